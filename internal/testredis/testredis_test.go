package testredis_test

import (
	"net"
	"testing"

	"github.com/relay-dev/relay/internal/testredis"
)

func TestStartStopRestart(t *testing.T) {
	srv := testredis.Start(t)
	if _, err := net.Dial("tcp", srv.Addr()); err != nil {
		t.Fatalf("dial %s: %v", srv.Addr(), err)
	}
	if want := "redis://" + srv.Addr(); srv.URL() != want {
		t.Errorf("URL = %q, want %q", srv.URL(), want)
	}
	srv.Stop()
	if c, err := net.Dial("tcp", srv.Addr()); err == nil {
		c.Close()
		t.Fatalf("dial %s after Stop succeeded", srv.Addr())
	}
	srv.Stop() // idempotent
	srv.Restart()
	c, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatalf("dial %s after Restart: %v", srv.Addr(), err)
	}
	c.Close()
}

func TestSentinel(t *testing.T) {
	master := testredis.Start(t)
	s := testredis.StartSentinel(t, master)
	got, err := s.MasterAddr()
	if err != nil || got != master.Addr() {
		t.Fatalf("MasterAddr = %q, %v; want %s", got, err, master.Addr())
	}
}
