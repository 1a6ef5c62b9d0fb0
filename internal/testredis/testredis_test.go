package testredis_test

import (
	"net"
	"strings"
	"testing"
	"time"

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
	p, err := c.PrimaryFor("some-key")
	if err != nil {
		t.Fatal(err)
	}
	p.Stop()
	c.WaitOK(20 * time.Second)
	q, err := c.PrimaryFor("some-key")
	if err != nil || q == p {
		t.Fatalf("after killing %s the slot's primary is %v, %v; want its replica", p.Addr(), q, err)
	}
}
