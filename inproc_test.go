package relay_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relay-dev/relay"
	"github.com/relay-dev/relay/internal/demo"
)

// establishedTo counts the ESTABLISHED TCP connections to the port of
// endpoint (tcp://host:port), from /proc/net/tcp.
func establishedTo(t *testing.T, endpoint string) int {
	t.Helper()
	port, err := strconv.Atoi(endpoint[strings.LastIndexByte(endpoint, ':')+1:])
	if err != nil {
		t.Fatalf("endpoint %q: %v", endpoint, err)
	}
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		t.Fatalf("count connections: %v", err)
	}
	defer f.Close()
	want := fmt.Sprintf(":%04X", port)
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		// local_address rem_address st: a connection accepted on the port.
		if len(fs) > 3 && strings.HasSuffix(fs[1], want) && fs[3] == "01" {
			n++
		}
	}
	return n
}

// serveDemo serves compute with the demo endpoint on n.
func serveDemo(t *testing.T, n *relay.Node, host string) *demo.Endpoint {
	t.Helper()
	srv, err := n.Serve(compute)
	if err != nil {
		t.Fatal(err)
	}
	ep := &demo.Endpoint{Host: host}
	ep.Register(srv)
	return ep
}

// Nodes of one process WithInproc reach each other over inproc: calls,
// casts and their answers work with no TCP connection between them; a node
// without the option still comes over TCP.
func TestInproc(t *testing.T) {
	mm := newMatchmaker(t)
	srv := newNode(t, mm, "s0", relay.WithInproc(true))
	ep := serveDemo(t, srv, "s0")
	client := newNode(t, mm, "client", relay.WithInproc(true))
	ctx := ctxTimeout(t, 10*time.Second)
	if got := callInt(t, client, compute, "add", 2); got != 2 {
		t.Fatalf("add 2 over inproc = %d", got)
	}
	if err := client.Cast(ctx, compute, "add", 3); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() error {
		if got := ep.State().Int; got != 5 {
			return fmt.Errorf("counter %d, want 5", got)
		}
		return nil
	})
	if n := establishedTo(t, srv.Endpoint()); n != 0 {
		t.Errorf("%d TCP connections to the server over inproc, want 0", n)
	}
	tcp := newNode(t, mm, "tcp")
	if got := callInt(t, tcp, compute, "add", 1); got != 6 {
		t.Fatalf("add 1 over tcp = %d", got)
	}
	if n := establishedTo(t, srv.Endpoint()); n != 1 {
		t.Errorf("%d TCP connections to the server, want 1 (the client without WithInproc)", n)
	}
}

// A node bound on ipc:// is reached over a Unix-domain socket.
func TestIPCBind(t *testing.T) {
	mm := newMatchmaker(t)
	dir := t.TempDir()
	srv := newNode(t, mm, "s0", relay.WithBindAddress("ipc://"+dir))
	serveDemo(t, srv, "s0")
	path, ok := strings.CutPrefix(srv.Endpoint(), "ipc://")
	if !ok {
		t.Fatalf("endpoint %q, want ipc://", srv.Endpoint())
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("ipc socket file: %v", err)
	}
	client := newNode(t, mm, "client")
	if got := callInt(t, client, compute, "add", 4); got != 4 {
		t.Fatalf("add 4 over ipc = %d", got)
	}
}

// Over the same-process hand-off, a server whose handler queue is full
// refuses at once with ErrBackPressure, and every cast it accepted is
// handled.
func TestInprocBackPressure(t *testing.T) {
	mm := newMatchmaker(t)
	srv := newNode(t, mm, "s0", relay.WithInproc(true), relay.WithMaxHandlers(1), relay.WithHandlerQueue(10))
	s, err := srv.Serve(compute)
	if err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	var handled atomic.Int64
	s.Handle("count", func(context.Context, *relay.Request) (any, error) {
		<-gate
		handled.Add(1)
		return nil, nil
	})
	client := newNode(t, mm, "client", relay.WithInproc(true))
	ctx := ctxTimeout(t, 10*time.Second)
	accepted := int64(0)
	for i := 0; i < 100; i++ {
		err := client.Cast(ctx, compute, "count", i)
		if errors.Is(err, relay.ErrBackPressure) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		accepted++
	}
	if accepted == 100 {
		t.Fatal("100 casts into one blocked handler with a queue of 10 were all accepted")
	}
	close(gate)
	waitFor(t, 5*time.Second, func() error {
		if got := handled.Load(); got != accepted {
			return fmt.Errorf("handled %d of %d accepted", got, accepted)
		}
		return nil
	})
}

// A cast handed over in the process carries ctx's headers, as one sent
// over a socket does.
func TestInprocCastCarriesHeaders(t *testing.T) {
	mm := newMatchmaker(t)
	srv := newNode(t, mm, "s0", relay.WithInproc(true))
	s, err := srv.Serve(compute)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	s.Handle("note", func(_ context.Context, r *relay.Request) (any, error) {
		got <- r.Header.Get("tenant")
		return nil, nil
	})
	client := newNode(t, mm, "client", relay.WithInproc(true))
	ctx := relay.WithHeader(ctxTimeout(t, 10*time.Second), "tenant", "t1")
	if err := client.Cast(ctx, compute, "note", nil); err != nil {
		t.Fatal(err)
	}
	select {
	case tenant := <-got:
		if tenant != "t1" {
			t.Errorf("tenant header %q, want t1", tenant)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the cast was not handled")
	}
}
