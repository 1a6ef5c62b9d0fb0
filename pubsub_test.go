package relay_test

import (
	"context"
	"fmt"
	"github.com/relay-dev/relay/internal/testutil"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relay-dev/relay"
)

// startProxy starts an in-process publisher proxy and stops it at cleanup.
func startProxy(t *testing.T, mm string, o relay.ProxyOptions) *relay.PublisherProxy {
	t.Helper()
	o.Matchmaker = mm
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := relay.StartPublisherProxy(ctx, o)
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

// Fanout through a publisher proxy: each server applies each message once;
// topic "foo" never receives "foobar".
func TestPubSubFanout(t *testing.T) {
	mm := newMatchmaker(t)
	startProxy(t, mm, relay.ProxyOptions{Ack: true})
	ps := relay.WithPubSub(true)
	var foo []*testutil.FanoutCounter
	for i := 0; i < 3; i++ {
		foo = append(foo, testutil.ServeCounter(t, newNode(t, mm, fmt.Sprintf("s%d", i), ps), "foo"))
	}
	foobar := testutil.ServeCounter(t, newNode(t, mm, "other", ps), "foobar")
	pub := newNode(t, mm, "pub", ps)
	testutil.WaitSubscribed(t, pub, "foo", 15*time.Second, foo...)
	testutil.WaitSubscribed(t, pub, "foobar", 15*time.Second, foobar)
	ctx := ctxTimeout(t, 20*time.Second)
	const msgs = 50
	for i := 0; i < msgs; i++ {
		if err := pub.Cast(ctx, relay.Target{Topic: "foo", Fanout: true}, "event", i); err != nil {
			t.Fatalf("fanout %d: %v", i, err)
		}
	}
	waitFor(t, 10*time.Second, func() error {
		for i, c := range foo {
			if err := c.Check(msgs); err != nil {
				return fmt.Errorf("server s%d: %v", i, err)
			}
		}
		return nil
	})
	if n := foobar.Distinct(); n != 0 {
		t.Errorf("topic foobar received %d fanouts sent to foo", n)
	}
}

// Notifications through a publisher proxy keep pool semantics.
func TestPubSubNotifyPools(t *testing.T) {
	mm := newMatchmaker(t)
	startProxy(t, mm, relay.ProxyOptions{Ack: true})
	ps := relay.WithPubSub(true)
	pub := newNode(t, mm, "pub", ps)
	var mu sync.Mutex
	got := map[string]int{}
	for _, name := range []string{"a", "b"} {
		n := newNode(t, mm, name, ps)
		name := name
		for _, pool := range []string{"workers", name + "-own"} {
			pool := pool
			l, err := n.Listen([]string{"audit"}, pool, func(_ context.Context, d *relay.Delivery) error {
				mu.Lock()
				got[d.EventType+" "+pool]++
				mu.Unlock()
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Stop() })
		}
	}
	ctx := ctxTimeout(t, 20*time.Second)
	// Warm up until each pool has heard one, then count from zero.
	waitFor(t, 10*time.Second, func() error {
		if err := pub.Notify(ctx, relay.Notification{Topic: "audit", EventType: "warmup"}); err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		if got["warmup workers"] == 0 || got["warmup a-own"] == 0 || got["warmup b-own"] == 0 {
			return fmt.Errorf("pools heard so far: %v", got)
		}
		return nil
	})
	for i := 0; i < 100; i++ {
		if err := pub.Notify(ctx, relay.Notification{Topic: "audit", EventType: "e", Payload: i}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if got["e workers"] != 100 || got["e a-own"] != 100 || got["e b-own"] != 100 {
			return fmt.Errorf("pools got %v, want 100 e each", got)
		}
		return nil
	})
}

// Two-level fanout: 1 central and 2 local proxies, 6 subscribers on 2 hosts;
// then the central proxy goes away while a second one is registered, and
// with acks no message is lost.
func TestPubSubTwoLevelAndProxyLoss(t *testing.T) {
	mm := newMatchmaker(t)
	central := startProxy(t, mm, relay.ProxyOptions{Ack: true})
	hosts := map[string]string{"h1": "127.0.0.2", "h2": "127.0.0.3"}
	for h, addr := range hosts {
		startProxy(t, mm, relay.ProxyOptions{Local: true, Host: h, BindAddress: addr})
	}
	ps := relay.WithPubSub(true)
	var subs []*testutil.FanoutCounter
	for h, addr := range hosts {
		for i := 0; i < 3; i++ {
			n := newNode(t, mm, h, ps, relay.WithBindAddress(addr))
			subs = append(subs, testutil.ServeCounter(t, n, "events"))
		}
	}
	// A second central proxy; the local ones follow it.
	startProxy(t, mm, relay.ProxyOptions{Ack: true})
	pub := newNode(t, mm, "pub", ps)
	testutil.WaitSubscribed(t, pub, "events", 15*time.Second, subs...)
	ctx := ctxTimeout(t, 30*time.Second)
	const msgs = 200
	for i := 0; i < msgs; i++ {
		if i == msgs/2 {
			if err := central.Close(); err != nil {
				t.Fatal(err)
			}
		}
		if err := pub.Cast(ctx, relay.Target{Topic: "events", Fanout: true}, "event", i); err != nil {
			t.Fatalf("fanout %d: %v", i, err)
		}
	}
	var lost atomic.Int64
	waitFor(t, 15*time.Second, func() error {
		lost.Store(0)
		var firstErr error
		for i, c := range subs {
			if err := c.Check(msgs); err != nil {
				l, _ := c.Tally(msgs)
				lost.Add(int64(l))
				if firstErr == nil {
					firstErr = fmt.Errorf("subscriber %d: %v", i, err)
				}
			}
		}
		return firstErr
	})
	t.Logf("6 subscribers x %d messages through 2 local proxies, central proxy closed at message %d: lost %d",
		msgs, msgs/2, lost.Load())
}

// A node in pub/sub mode with no publisher proxy registered fails at start
// and says so, rather than losing its fanouts.
func TestPubSubNeedsProxy(t *testing.T) {
	n, err := relay.Start(context.Background(), relay.WithMatchmaker(newMatchmaker(t)), relay.WithPubSub(true))
	if err == nil {
		n.Close()
		t.Fatal("Start with WithPubSub and no publisher proxy succeeded")
	}
	if !strings.Contains(err.Error(), "WithPubSub") || !strings.Contains(err.Error(), "node proxy --publisher") {
		t.Errorf("error %q does not name the option and the fix", err)
	}
}
