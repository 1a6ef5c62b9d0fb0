package testredis_test

import (
	"net"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/relay-dev/relay/internal/testredis"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestStartStopRestart(t *testing.T) {
	srv := testredis.Start(t)
	if _, err := net.Dial("tcp", srv.Addr()); err != nil {
		t.Fatalf("dial %s: %v", srv.Addr(), err)
	}
	if want := "redis://" + srv.Addr(); srv.URL() != want {
		t.Errorf("URL = %q, want %q", srv.URL(), want)
	}
	if _, err := srv.Do("SET", "k", "v"); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	if c, err := net.Dial("tcp", srv.Addr()); err == nil {
		c.Close()
		t.Fatalf("dial %s after Stop succeeded", srv.Addr())
	}
	srv.Stop() // idempotent
	srv.Restart()
	if v, err := srv.Do("GET", "k"); err != nil || v != nil {
		t.Fatalf("GET after Restart = %v, %v; want an empty dataset", v, err)
	}
}

func TestSentinel(t *testing.T) {
	master := testredis.Start(t)
	s := testredis.StartSentinel(t, master)
	got, err := s.MasterAddr()
	if err != nil || got != master.Addr() {
		t.Fatalf("MasterAddr = %q, %v; want %s", got, err, master.Addr())
	}
}

func TestPasswordsAndSentinel(t *testing.T) {
	master := testredis.Start(t, testredis.WithPassword("data-pw"), testredis.WithUser("relay on >user-pw ~relay:* &relay:* +@all"))
	if want := "redis://:data-pw@" + master.Addr(); master.URL() != want {
		t.Errorf("URL = %q, want %q", master.URL(), want)
	}
	if _, err := master.Do("PING"); err != nil {
		t.Fatal(err)
	}
	s := testredis.StartSentinel(t, master, testredis.WithPassword("sentinel-pw"))
	if got, err := s.MasterAddr(); err != nil || got != master.Addr() {
		t.Fatalf("MasterAddr = %q, %v; want %s", got, err, master.Addr())
	}
	if u := s.URL(); !strings.Contains(u, ":data-pw@") || !strings.Contains(u, "sentinel_password=sentinel-pw") {
		t.Errorf("sentinel URL %q lacks a password", u)
	}
}

func TestTLS(t *testing.T) {
	srv := testredis.Start(t, testredis.WithTLS())
	if _, err := srv.Do("PING"); err != nil {
		t.Fatal(err)
	}
	if u := srv.URL(); !strings.HasPrefix(u, "rediss://") || !strings.Contains(u, "tls_ca=") {
		t.Errorf("URL = %q, want rediss:// with tls_ca", u)
	}
}

func TestCluster(t *testing.T) {
	c := testredis.StartCluster(t, 3, 1)
	if n := len(c.Nodes()); n != 6 {
		t.Fatalf("%d nodes, want 6", n)
	}
	// "foo" is in slot 12182: the third primary's (10923-16383).
	p, err := c.PrimaryFor("foo")
	if err != nil || p != c.Nodes()[2] {
		t.Fatalf("PrimaryFor(foo) = %v, %v; want the third node", p, err)
	}
	if _, err := p.Do("SET", "foo", "1"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Nodes()[0].Do("GET", "foo"); err == nil || !strings.HasPrefix(err.Error(), "MOVED 12182 ") {
		t.Errorf("GET foo on the first primary = %v; want MOVED", err)
	}
	// Failover is exercised by the matchmaker's cluster test.
}
