package relay_test

import (
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/relay-dev/relay"
)

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("count fds: %v", err)
	}
	return len(ents)
}

// A server restarted 30 times, each time on a new port: the client calls it
// each time, and closes the connections to the addresses that went away
// once they are idle, so its file descriptors stay near where they began
// (they grew by 2 per restart, for ever).
func TestClientForgetsServersThatWentAway(t *testing.T) {
	mm := newMatchmaker(t)
	client := newNode(t, mm, "client", relay.WithIdleTimeout(200*time.Millisecond))
	start := func() *relay.Node {
		srv := newNode(t, mm, "s0")
		serveDemo(t, srv, "s0")
		return srv
	}
	srv := start()
	if got := callInt(t, client, compute, "add", 1); got != 1 {
		t.Fatalf("add 1 = %d", got)
	}
	base := openFDs(t)
	for i := 0; i < 30; i++ {
		if err := srv.Close(); err != nil {
			t.Fatal(err)
		}
		srv = start()
		waitFor(t, 10*time.Second, func() error {
			return client.Call(ctxTimeout(t, time.Second), compute, "add", 1, nil)
		})
	}
	// The old addresses' connections go after the idle timeout.
	waitFor(t, 10*time.Second, func() error {
		if n := openFDs(t); n > base+6 {
			return fmt.Errorf("%d fds open, %d at the start: the connections to gone servers were kept", n, base)
		}
		return nil
	})
	t.Logf("30 server restarts on new ports: %d fds in the process at the start, %d at the end", base, openFDs(t))
	if err := client.Call(ctxTimeout(t, 5*time.Second), compute, "add", 1, nil); err != nil {
		t.Fatalf("call after the idle connections closed: %v", err)
	}
}

// Beyond WithMaxConnections a call to one more server fails at once with
// ErrTooManyConnections; once the idle connection is closed it works.
func TestMaxConnections(t *testing.T) {
	mm := newMatchmaker(t)
	for _, h := range []string{"a", "b"} {
		serveDemo(t, newNode(t, mm, h), h)
	}
	client := newNode(t, mm, "client", relay.WithMaxConnections(1), relay.WithIdleTimeout(200*time.Millisecond))
	if err := client.Call(ctxTimeout(t, 5*time.Second), directed("a"), "add", 1, nil); err != nil {
		t.Fatal(err)
	}
	err := client.Call(ctxTimeout(t, 5*time.Second), directed("b"), "add", 1, nil)
	if !errors.Is(err, relay.ErrTooManyConnections) {
		t.Fatalf("call to a second server with WithMaxConnections(1) = %v, want ErrTooManyConnections", err)
	}
	waitFor(t, 10*time.Second, func() error {
		return client.Call(ctxTimeout(t, time.Second), directed("b"), "add", 1, nil)
	})
}
