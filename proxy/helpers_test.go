package proxy_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/relay-dev/relay"
	"github.com/relay-dev/relay/internal/testutil"
	"github.com/relay-dev/relay/matchmaker"
)

// TestMain fails the package if any goroutine outlives its tests.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// mmSeq makes matchmaker names unique across -count runs and subtests.
var mmSeq atomic.Uint64

// newMatchmaker returns a memory matchmaker URL no other test uses.
func newMatchmaker() string { return fmt.Sprintf("memory://proxy-test-%d", mmSeq.Add(1)) }

// newNode starts a node on mm advertising host, closed at cleanup.
func newNode(t testing.TB, mm, host string, opts ...relay.Option) *relay.Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	n, err := relay.Start(ctx, append([]relay.Option{relay.WithMatchmaker(mm), relay.WithHost(host)}, opts...)...)
	if err != nil {
		t.Fatalf("start node %s: %v", host, err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("close node %s: %v", host, err)
		}
	})
	return n
}

// closer is what every proxy has.
type closer interface{ Close() error }

// started fails the test on err and closes p at cleanup.
func started[P closer](t testing.TB, p P, err error) P {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("close proxy: %v", err)
		}
	})
	return p
}

// registered reports whether member is registered under key in mm.
func registered(t testing.TB, mm string, key matchmaker.Key, member string) bool {
	t.Helper()
	m, err := matchmaker.Open(mm)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	members, err := m.Lookup(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range members {
		if x == member {
			return true
		}
	}
	return false
}

// restarted waits until p's socket loop has been restarted n times.
func restarted(t testing.TB, p interface{ Restarts() int }, n int) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, func() error {
		if got := p.Restarts(); got != n {
			return fmt.Errorf("socket loop restarted %d times, want %d", got, n)
		}
		return nil
	})
}

// errFault is the socket failure the tests inject into a proxy's loop.
var errFault = fmt.Errorf("test: socket failed")

// quiet fails the test if p has reported a failure.
func quiet(t testing.TB, p interface{ Failed() <-chan error }) {
	t.Helper()
	select {
	case err := <-p.Failed():
		t.Fatalf("proxy failed: %v", err)
	default:
	}
}

// runCounter counts a handler's runs per msg_id.
type runCounter struct {
	mu   sync.Mutex
	runs map[string]int
}

func newRunCounter() *runCounter { return &runCounter{runs: map[string]int{}} }

// echo is a handler that answers its argument and counts its run.
func (c *runCounter) echo(_ context.Context, r *relay.Request) (any, error) {
	var v int
	if err := r.Decode(&v); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.runs[r.ID]++
	c.mu.Unlock()
	return v, nil
}

// counts returns how many msg_ids the handler ran for, and for how many
// of them it ran more than once.
func (c *runCounter) counts() (ids, again int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.runs {
		if n > 1 {
			again++
		}
	}
	return len(c.runs), again
}
