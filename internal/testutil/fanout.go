package testutil

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relay-dev/relay"
)

// FanoutCounter counts, for one server of a topic, the fanouts "event N"
// it handled per N, and apart from them the "probe" fanouts that tests use
// to wait for PUB/SUB subscriptions. Safe for concurrent use.
type FanoutCounter struct {
	mu     sync.Mutex
	seen   map[int]int
	probes atomic.Int64
}

// ServeCounter serves topic on n with a FanoutCounter.
func ServeCounter(t testing.TB, n *relay.Node, topic string) *FanoutCounter {
	t.Helper()
	s, err := n.Serve(relay.Target{Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	c := &FanoutCounter{seen: map[int]int{}}
	s.Handle("event", func(_ context.Context, r *relay.Request) (any, error) {
		var i int
		if err := r.Decode(&i); err != nil {
			return nil, err
		}
		c.mu.Lock()
		c.seen[i]++
		c.mu.Unlock()
		return nil, nil
	})
	s.Handle("probe", func(context.Context, *relay.Request) (any, error) { c.probes.Add(1); return nil, nil })
	return c
}

// Tally counts, over events 0..n-1, the ones never handled and the extra
// handlings.
func (c *FanoutCounter) Tally(n int) (lost, dup int) { return c.TallyRange(0, n) }

// TallyRange counts, over events from..to-1, the ones never handled and
// the extra handlings.
func (c *FanoutCounter) TallyRange(from, to int) (lost, dup int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := from; i < to; i++ {
		switch k := c.seen[i]; {
		case k == 0:
			lost++
		case k > 1:
			dup += k - 1
		}
	}
	return lost, dup
}

// Check reports unless events 0..n-1, and nothing else, were each handled
// exactly once.
func (c *FanoutCounter) Check(n int) error {
	lost, dup := c.Tally(n)
	c.mu.Lock()
	distinct := len(c.seen)
	c.mu.Unlock()
	if lost+dup > 0 || distinct != n {
		return fmt.Errorf("of %d events: %d lost, %d handled twice, %d distinct received", n, lost, dup, distinct)
	}
	return nil
}

// Distinct returns how many different events were handled.
func (c *FanoutCounter) Distinct() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

// WaitSubscribed publishes batches of probe fanouts to topic until every
// counter got every probe of a batch: PUB/SUB delivers only once a
// subscription has reached the proxies, and a batch goes through every
// proxy (round-robin).
func WaitSubscribed(t testing.TB, pub *relay.Node, topic string, timeout time.Duration, cs ...*FanoutCounter) {
	t.Helper()
	const batch = 6
	WaitFor(t, timeout, func() error {
		before := make([]int64, len(cs))
		for i, c := range cs {
			before[i] = c.probes.Load()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		for j := 0; j < batch; j++ {
			if err := pub.Cast(ctx, relay.Target{Topic: topic, Fanout: true}, "probe", nil); err != nil {
				return err
			}
		}
		return Poll(time.Second, func() error {
			for i, c := range cs {
				if got := c.probes.Load() - before[i]; got != batch {
					return fmt.Errorf("subscriber %d got %d of %d probes", i, got, batch)
				}
			}
			return nil
		})
	})
}
