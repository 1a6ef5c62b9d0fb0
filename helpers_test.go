package relay_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relay-dev/relay/internal/testutil"

	"github.com/relay-dev/relay"
	"github.com/relay-dev/relay/internal/demo"
)

// compute is the topic every test cluster serves.
var compute = relay.Target{Topic: "compute"}

// mmSeq makes matchmaker names unique across -count runs and subtests.
var mmSeq atomic.Uint64

// newMatchmaker returns a memory matchmaker URL no other test uses.
func newMatchmaker(t testing.TB) string {
	t.Helper()
	name := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '-'
	}, t.Name())
	return fmt.Sprintf("memory://%s-%d", name, mmSeq.Add(1))
}

// newNode starts a node on matchmaker mm advertising host, and closes it
// when the test ends (failing the test if Close fails).
func newNode(t testing.TB, mm string, host string, opts ...relay.Option) *relay.Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	logs := &logBuffer{}
	all := append([]relay.Option{
		relay.WithMatchmaker(mm), relay.WithHost(host),
		relay.WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
	}, opts...)
	n, err := relay.Start(ctx, all...)
	if err != nil {
		t.Fatalf("start node %s on %s: %v", host, mm, err)
	}
	t.Cleanup(func() {
		failed := t.Failed()
		if failed {
			t.Logf("node %s (%s) stats before close: %+v", host, n.Endpoint(), n.Stats())
		}
		if err := n.Close(); err != nil {
			t.Errorf("close node %s: %v", host, err)
		}
		if failed || t.Failed() {
			t.Logf("node %s log:\n%s", host, logs.String())
		}
	})
	return n
}

// logBuffer keeps the first logBufferMax bytes a node logs, for the report
// of a failed test. Safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

const logBufferMax = 64 << 10

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() < logBufferMax {
		b.buf.Write(p)
	}
	return len(p), nil
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newCluster starts n server nodes, hosts "s0" ... "s<n-1>", each serving
// compute with a demo endpoint, and a client node "client". nodes holds the
// servers in order, then the client; eps[i] is the endpoint of nodes[i].
func newCluster(t testing.TB, n int) (mm string, nodes []*relay.Node, eps []*demo.Endpoint) {
	t.Helper()
	return newClusterWith(t, n, nil)
}

// newClusterWith is newCluster with setup called on each server after the
// demo methods are registered, to add methods.
func newClusterWith(t testing.TB, n int, setup func(i int, srv *relay.Server)) (mm string, nodes []*relay.Node, eps []*demo.Endpoint) {
	t.Helper()
	mm = newMatchmaker(t)
	for i := range n {
		host := fmt.Sprintf("s%d", i)
		node := newNode(t, mm, host)
		ep := &demo.Endpoint{Host: host}
		srv, err := node.Serve(compute)
		if err != nil {
			t.Fatalf("serve %s on %s: %v", compute, host, err)
		}
		ep.Register(srv)
		if setup != nil {
			setup(i, srv)
		}
		nodes = append(nodes, node)
		eps = append(eps, ep)
	}
	nodes = append(nodes, newNode(t, mm, "client"))
	return mm, nodes, eps
}

// directed returns compute directed at host.
func directed(host string) relay.Target {
	t := compute
	t.Server = host
	return t
}

// waitFor calls f until it returns nil, failing the test with f's last
// error if timeout passes first.
func waitFor(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	testutil.WaitFor(t, timeout, f)
}

// ctxTimeout returns a context that ends after d, cancelled when the test ends.
func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitAtLeast waits until the counter get of n reaches want.
func waitAtLeast(t testing.TB, n *relay.Node, name string, get func(relay.Stats) uint64, want uint64) {
	t.Helper()
	waitFor(t, 10*time.Second, func() error {
		if got := get(n.Stats()); got < want {
			return fmt.Errorf("%s of %s = %d, want at least %d", name, n.Host(), got, want)
		}
		return nil
	})
}

// waitStat waits until the counter of n that get reads equals want.
func waitStat(t testing.TB, n *relay.Node, name string, get func(relay.Stats) uint64, want uint64) {
	t.Helper()
	waitFor(t, 10*time.Second, func() error {
		if got := get(n.Stats()); got != want {
			return fmt.Errorf("%s of %s = %d, want %d", name, n.Host(), got, want)
		}
		return nil
	})
}
