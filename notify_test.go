package relay_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/relay-dev/relay"
)

// A fanout cast reaches every server of its topic exactly once; other
// topics (including one that shares a prefix) get nothing.
func TestFanout(t *testing.T) {
	mm, nodes, eps := newCluster(t, 3)
	client := nodes[3]
	// A second topic "computer" on s0 must not see fanouts to "compute".
	other, err := nodes[0].Serve(relay.Target{Topic: "computer"})
	if err != nil {
		t.Fatal(err)
	}
	var otherHits sync.Map
	other.Handle("add", func(ctx context.Context, r *relay.Request) (any, error) {
		otherHits.Store(r.ID, true)
		return nil, nil
	})
	ctx := ctxTimeout(t, 10*time.Second)
	fan := relay.Target{Topic: "compute", Fanout: true, Server: "ignored"}
	for i := 0; i < 5; i++ {
		if err := client.Cast(ctx, fan, "add", 1); err != nil {
			t.Fatalf("fanout %d: %v", i, err)
		}
	}
	waitFor(t, 5*time.Second, func() error {
		for i, ep := range eps {
			if got := ep.Casts(); got != 5 {
				return fmt.Errorf("server s%d applied %d fanouts, want 5", i, got)
			}
		}
		return nil
	})
	// Exactly once: nothing more arrives later.
	if err := client.Call(ctx, directed("s0"), "get", nil, nil); err != nil {
		t.Fatal(err)
	}
	for i, ep := range eps {
		if got := ep.Casts(); got != 5 {
			t.Errorf("server s%d applied %d fanouts, want exactly 5", i, got)
		}
	}
	n := 0
	otherHits.Range(func(any, any) bool { n++; return true })
	if n != 0 {
		t.Errorf("topic computer received %d fanouts meant for compute", n)
	}

	// A server that joins receives the fanouts sent after Serve returned.
	late := newNode(t, mm, "late")
	srv, err := late.Serve(relay.Target{Topic: "compute"})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan struct{}, 10)
	srv.Handle("add", func(context.Context, *relay.Request) (any, error) { got <- struct{}{}; return nil, nil })
	if err := client.Cast(ctx, fan, "add", 1); err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("a server that joined before the fanout did not receive it")
	}

	if err := client.Cast(ctx, relay.Target{Topic: "nobody", Fanout: true}, "add", 1); !errors.Is(err, relay.ErrNoServers) {
		t.Errorf("fanout to an unserved topic = %v, want ErrNoServers", err)
	}
}

// Every priority arrives with its publisher id, event type and payload.
func TestNotifyPriorities(t *testing.T) {
	mm := newMatchmaker(t)
	pub := newNode(t, mm, "pub")
	sub := newNode(t, mm, "sub")
	got := make(chan *relay.Delivery, 16)
	l, err := sub.Listen([]string{"instance"}, "", func(_ context.Context, d *relay.Delivery) error {
		got <- d
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Stop()
	ctx := ctxTimeout(t, 10*time.Second)
	type payload struct {
		ID   int    `msgpack:"id"`
		Name string `msgpack:"name"`
	}
	for i, p := range relay.Priorities {
		err := pub.Notify(ctx, relay.Notification{Topic: "instance", Priority: p, EventType: "instance.create",
			PublisherID: "compute.host1", Payload: payload{ID: i, Name: p}})
		if err != nil {
			t.Fatalf("notify %s: %v", p, err)
		}
	}
	seen := map[string]bool{}
	for range relay.Priorities {
		select {
		case d := <-got:
			var p payload
			if err := d.Decode(&p); err != nil {
				t.Fatal(err)
			}
			if d.Topic != "instance" || d.EventType != "instance.create" || d.PublisherID != "compute.host1" ||
				p.Name != d.Priority || relay.Priorities[p.ID] != d.Priority || d.Timestamp.IsZero() {
				t.Errorf("delivery %+v payload %+v", d.Notification, p)
			}
			seen[d.Priority] = true
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d of %d priorities arrived", len(seen), len(relay.Priorities))
		}
	}
	if err := pub.Notify(ctx, relay.Notification{Topic: "nobody"}); !errors.Is(err, relay.ErrNoServers) {
		t.Errorf("notify with no listener = %v, want ErrNoServers", err)
	}
	if err := pub.Notify(ctx, relay.Notification{Topic: "instance", Priority: "loud"}); !errors.Is(err, relay.ErrBadTarget) {
		t.Errorf("notify with a bad priority = %v, want ErrBadTarget", err)
	}
	// A listener of one priority gets only that one; topic prefixes do not leak.
	only := make(chan string, 16)
	l2, err := sub.Listen([]string{"instance.error"}, "", func(_ context.Context, d *relay.Delivery) error {
		only <- d.Topic + "." + d.Priority
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Stop()
	for _, n := range []relay.Notification{{Topic: "instance", Priority: "info"}, {Topic: "instances", Priority: "error"}, {Topic: "instance", Priority: "error"}} {
		if err := pub.Notify(ctx, n); err != nil && !errors.Is(err, relay.ErrNoServers) {
			t.Fatal(err)
		}
	}
	select {
	case got := <-only:
		if got != "instance.error" {
			t.Errorf("instance.error listener got %s", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("instance.error listener got nothing")
	}
}

// Listeners sharing a pool compete (each event to exactly one); each pool
// gets every event.
func TestNotifyPools(t *testing.T) {
	mm := newMatchmaker(t)
	pub := newNode(t, mm, "pub")
	var mu sync.Mutex
	received := map[string][]int{} // listener -> event numbers
	listen := func(n *relay.Node, name, pool string) {
		l, err := n.Listen([]string{"audit"}, pool, func(_ context.Context, d *relay.Delivery) error {
			var i int
			if err := d.Decode(&i); err != nil {
				return err
			}
			mu.Lock()
			received[name] = append(received[name], i)
			mu.Unlock()
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Stop() })
	}
	a, b := newNode(t, mm, "a"), newNode(t, mm, "b")
	listen(a, "workers-a", "workers")
	listen(b, "workers-b", "workers")
	listen(a, "archive", "archive")
	listen(b, "loner", "")
	ctx := ctxTimeout(t, 10*time.Second)
	const events = 100
	for i := 0; i < events; i++ {
		if err := pub.Notify(ctx, relay.Notification{Topic: "audit", EventType: "e", Payload: i}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if w := len(received["workers-a"]) + len(received["workers-b"]); w != events ||
			len(received["archive"]) != events || len(received["loner"]) != events {
			return fmt.Errorf("received workers %d+%d archive %d loner %d, want %d each pool",
				len(received["workers-a"]), len(received["workers-b"]), len(received["archive"]), len(received["loner"]), events)
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	pool := append(append([]int(nil), received["workers-a"]...), received["workers-b"]...)
	slices.Sort(pool)
	for i := 0; i < events; i++ {
		if pool[i] != i {
			t.Fatalf("pool workers: event %d missing or duplicated (got %v)", i, pool)
		}
	}
	if len(received["workers-a"]) == 0 || len(received["workers-b"]) == 0 {
		t.Errorf("pool members did not share the work: a=%d b=%d", len(received["workers-a"]), len(received["workers-b"]))
	}
}

// 205 notifications to a batch listener of size 100, wait 2s, arrive as
// batches of 100, 100 and 5; the 5 are handed over 2s after the first of
// them arrived, not sooner (and not only at Stop).
func TestNotifyBatch(t *testing.T) {
	mm := newMatchmaker(t)
	pub := newNode(t, mm, "pub")
	sub := newNode(t, mm, "sub")
	type batch struct {
		size int
		at   time.Time // when the handler got it
	}
	batches := make(chan batch, 10)
	const wait = 2 * time.Second
	l, err := sub.ListenBatch([]string{"metering"}, "meters", 100, wait, func(_ context.Context, ds []*relay.Delivery) error {
		batches <- batch{len(ds), time.Now()}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Stop()
	ctx := ctxTimeout(t, 10*time.Second)
	for i := 0; i < 205; i++ {
		if err := pub.Notify(ctx, relay.Notification{Topic: "metering", EventType: "sample", Payload: i}); err != nil {
			t.Fatal(err)
		}
	}
	var got []batch
	for len(got) < 3 {
		select {
		case b := <-batches:
			got = append(got, b)
		case <-time.After(wait + 5*time.Second):
			t.Fatalf("batches so far %v, want sizes [100 100 5]", got)
		}
	}
	if sizes := []int{got[0].size, got[1].size, got[2].size}; !slices.Equal(sizes, []int{100, 100, 5}) {
		t.Fatalf("batches %v, want [100 100 5]", sizes)
	}
	// The first of the 5 reached the batcher after the second batch was
	// handed over (one batch at a time), so the wait ran from then at the
	// earliest.
	if d := got[2].at.Sub(got[1].at); d < wait || d > wait+5*time.Second {
		t.Errorf("partial batch handed over %v after the full one before it, want %v (the wait) or a little more", d, wait)
	}
}
