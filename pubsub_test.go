package relay_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relay-dev/relay"
	"github.com/relay-dev/relay/internal/testutil"
	"github.com/relay-dev/relay/matchmaker"
	"github.com/relay-dev/relay/proxy"
)

// startProxy starts an in-process publisher proxy and stops it at cleanup.
func startProxy(t *testing.T, mm string, opts ...proxy.Option) *proxy.Publisher {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := proxy.StartPublisher(ctx, append(opts, proxy.WithMatchmaker(mm))...)
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

// publishEvents fans out "event" i for i in [from, to) on topic.
func publishEvents(t *testing.T, pub *relay.Node, ctx context.Context, topic string, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := pub.Cast(ctx, relay.Target{Topic: topic, Fanout: true}, "event", i); err != nil {
			t.Fatalf("fanout %d: %v", i, err)
		}
	}
}

// waitEvents waits until every counter has handled events 0..n-1 once each.
func waitEvents(t *testing.T, subs []*testutil.FanoutCounter, n int) {
	t.Helper()
	waitFor(t, 15*time.Second, func() error {
		for i, c := range subs {
			if err := c.Check(n); err != nil {
				return fmt.Errorf("subscriber %d: %v", i, err)
			}
		}
		return nil
	})
}

// Fanout through a publisher proxy: each server applies each message once;
// topic "foo" never receives "foobar".
func TestPubSubFanout(t *testing.T) {
	mm := newMatchmaker(t)
	startProxy(t, mm, proxy.WithAck(true))
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
	publishEvents(t, pub, ctx, "foo", 0, msgs)
	waitEvents(t, foo, msgs)
	if n := foobar.Distinct(); n != 0 {
		t.Errorf("topic foobar received %d fanouts sent to foo", n)
	}
}

// Notifications through a publisher proxy keep pool semantics.
func TestPubSubNotifyPools(t *testing.T) {
	mm := newMatchmaker(t)
	startProxy(t, mm, proxy.WithAck(true))
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
// then the central proxy crashes (still registered, as after kill -9) while
// a second one is registered, and with acks no message is lost: what the
// crashed one did not acknowledge is resent through the other. Last, the
// local proxy of one host crashes: only that host's subscribers stop
// receiving, so they did go through it.
func TestPubSubTwoLevelAndProxyLoss(t *testing.T) {
	mm := newMatchmaker(t)
	central := startProxy(t, mm, proxy.WithAck(true))
	hosts := []string{"h1", "h2"}
	addrs := map[string]string{"h1": "127.0.0.2", "h2": "127.0.0.3"}
	locals := map[string]*proxy.Publisher{}
	for _, h := range hosts {
		locals[h] = startProxy(t, mm, proxy.WithLocal(true), proxy.WithHost(h), proxy.WithBindAddress(addrs[h]))
	}
	ps := relay.WithPubSub(true)
	subs := map[string][]*testutil.FanoutCounter{}
	var all []*testutil.FanoutCounter
	for _, h := range hosts {
		for i := 0; i < 3; i++ {
			n := newNode(t, mm, h, ps, relay.WithBindAddress(addrs[h]))
			c := testutil.ServeCounter(t, n, "events")
			subs[h] = append(subs[h], c)
			all = append(all, c)
		}
	}
	// A second central proxy; the local ones follow it.
	startProxy(t, mm, proxy.WithAck(true))
	pub := newNode(t, mm, "pub", ps)
	testutil.WaitSubscribed(t, pub, "events", 15*time.Second, all...)
	ctx := ctxTimeout(t, 30*time.Second)
	const msgs = 200
	publishEvents(t, pub, ctx, "events", 0, msgs/2)
	central.Crash()
	publishEvents(t, pub, ctx, "events", msgs/2, msgs)
	waitEvents(t, all, msgs)

	locals["h1"].Crash()
	const more = 50
	publishEvents(t, pub, ctx, "events", msgs, msgs+more)
	// h2's subscribers get them through their local proxy; a subscriber of
	// h1 connected straight to a central proxy would have them as soon.
	waitEvents(t, subs["h2"], msgs+more)
	for i, c := range subs["h1"] {
		if n := c.Distinct(); n != msgs {
			t.Errorf("h1 subscriber %d received %d distinct fanouts after its local proxy crashed, want %d (the ones before)", i, n, msgs)
		}
	}
}

// A central proxy with no subscriber for a message answers NoSubscribers
// and the publisher tries the next proxy; what no proxy takes by its
// deadline is dropped and counted.
func TestPubSubNoSubscribers(t *testing.T) {
	mm := newMatchmaker(t)
	startProxy(t, mm, proxy.WithAck(true))
	// A proxy no subscriber reaches: registered with a backend nobody
	// can connect to.
	lonely := startProxy(t, newMatchmaker(t), proxy.WithAck(true))
	parts := strings.Split(lonely.Endpoints(), "|")
	if len(parts) != 3 || parts[2] != "ack" {
		t.Fatalf("publisher proxy endpoints %q, want FRONT|BACK|ack", lonely.Endpoints())
	}
	registerIn(t, mm, matchmaker.Key{Exchange: "$relay", Topic: "publishers"}, parts[0]+"|tcp://127.0.0.1:9|ack")
	ps := relay.WithPubSub(true)
	var subs []*testutil.FanoutCounter
	for i := 0; i < 2; i++ {
		subs = append(subs, testutil.ServeCounter(t, newNode(t, mm, fmt.Sprintf("s%d", i), ps), "events"))
	}
	pub := newNode(t, mm, "pub", ps)
	testutil.WaitSubscribed(t, pub, "events", 15*time.Second, subs...)
	ctx := ctxTimeout(t, 30*time.Second)
	const msgs = 50
	publishEvents(t, pub, ctx, "events", 0, msgs)
	waitEvents(t, subs, msgs)
	// A record no proxy takes is resent through each until its deadline,
	// then dropped and counted by the publisher (§4.4).
	before := pub.Stats().DroppedCasts
	nctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := pub.Cast(nctx, relay.Target{Topic: "nobody", Fanout: true}, "event", 0); err != nil && !errors.Is(err, relay.ErrNoServers) {
		t.Errorf("fanout nobody subscribes to = %v, want nil (dropped later) or ErrNoServers", err)
	}
	waitStat(t, pub, "DroppedCasts", func(s relay.Stats) uint64 { return s.DroppedCasts }, before+1)
}

// The fanout-subscriber actor, killed, is restarted with a new SUB socket
// that subscribes again: fanouts after the restart arrive once each.
func TestPubSubSubscriberRestart(t *testing.T) {
	sub := restartSubscriber(t, 0, func(sub *relay.Node) error { return sub.KillActor(relay.ActorSubscriber) })
	if st := sub.Stats(); st.Restarts[relay.ActorSubscriber] != 1 || st.LoopFailures != 0 {
		t.Errorf("stats %+v: want 1 restart of %s, no loop failure", st, relay.ActorSubscriber)
	}
}

// testKillSubscriber (a case of TestKillActors) fails the fanout-subscriber's
// loop with a socket error (InjectFault): the actor is restarted with a
// new SUB that subscribes again, and fanouts published before the fault
// and after the restart each arrive once.
func testKillSubscriber(t *testing.T) {
	sub := restartSubscriber(t, 50, func(sub *relay.Node) error { return sub.InjectFault(relay.ActorSubscriber, errInjected) })
	if st := sub.Stats(); st.LoopFailures != 1 {
		t.Errorf("stats %+v: want 1 loop failure (the injected socket error)", st)
	}
}

// restartSubscriber starts a publisher proxy, a subscriber node serving
// "events" and a publisher node; publishes events 0..before-1 and waits
// for them; makes the subscriber's fanout-subscriber fail with kill and
// waits for its one restart; then publishes 50 more and waits until every
// event arrived once. It returns the subscriber node.
func restartSubscriber(t *testing.T, before int, kill func(sub *relay.Node) error) *relay.Node {
	t.Helper()
	mm := newMatchmaker(t)
	startProxy(t, mm, proxy.WithAck(true))
	ps := relay.WithPubSub(true)
	sub := newNode(t, mm, "s0", ps)
	c := testutil.ServeCounter(t, sub, "events")
	pub := newNode(t, mm, "pub", ps)
	testutil.WaitSubscribed(t, pub, "events", 15*time.Second, c)
	ctx := ctxTimeout(t, 30*time.Second)
	publishEvents(t, pub, ctx, "events", 0, before)
	waitEvents(t, []*testutil.FanoutCounter{c}, before)
	if err := kill(sub); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() error {
		if n := sub.Restarts(relay.ActorSubscriber); n != 1 {
			return fmt.Errorf("%s restarted %d times, want 1", relay.ActorSubscriber, n)
		}
		return nil
	})
	testutil.WaitSubscribed(t, pub, "events", 15*time.Second, c)
	publishEvents(t, pub, ctx, "events", before, before+50)
	waitEvents(t, []*testutil.FanoutCounter{c}, before+50)
	return sub
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

// dropCounter is a slog handler that counts the records whose message is
// one of msgs (a proxy's "proxy dropped a message").
type dropCounter struct {
	msgs []string
	n    *atomic.Int64
}

func (d dropCounter) Enabled(context.Context, slog.Level) bool { return true }
func (d dropCounter) Handle(_ context.Context, r slog.Record) error {
	if slices.Contains(d.msgs, r.Message) {
		d.n.Add(1)
	}
	return nil
}
func (d dropCounter) WithAttrs([]slog.Attr) slog.Handler { return d }
func (d dropCounter) WithGroup(string) slog.Handler      { return d }

// A notification goes through the publisher proxies as one message per
// listener pool: a burst of as many messages as pools (node scale: a
// thousand computes, each a pool of its own). The proxies take such a
// burst whole: none is refused (EAGAIN at the central proxy's XPUB
// high-water mark, 32, left most of a burst to the publisher's resends,
// some until their deadline: node scale at 200 nodes had the last receiver
// of a notification at 2.9 s and 4 notifications reported undelivered;
// this test, without the fix, 4,500-8,900 resends and 10-30 s for 5
// notifications), and every pool gets every notification.
func TestPubSubNotifyBurst(t *testing.T) {
	// 40 nodes of 5 pools each, on one priority: a node subscribes to
	// few prefixes (a SUB with more subscriptions than its high-water
	// mark loses some: docs/SCALE.md).
	const nodes, perNode, notes = 40, 5, 5
	const pools = nodes * perNode
	mm := newMatchmaker(t)
	var drops atomic.Int64
	log := slog.New(dropCounter{msgs: []string{"proxy dropped a message", "local proxy dropped a message"}, n: &drops})
	startProxy(t, mm, proxy.WithAck(true), proxy.WithLogger(log))
	startProxy(t, mm, proxy.WithLocal(true), proxy.WithHost("h1"), proxy.WithBindAddress("127.0.0.2"), proxy.WithLogger(log))
	ps := relay.WithPubSub(true)
	var mu sync.Mutex
	got := map[string]map[int]bool{} // by pool: the notifications heard
	for i := range nodes {
		n := newNode(t, mm, "h1", ps, relay.WithBindAddress("127.0.0.2"))
		for p := i; p < pools; p += nodes {
			pool := fmt.Sprintf("pool-%d", p)
			l, err := n.Listen([]string{"events.info"}, pool, func(_ context.Context, d *relay.Delivery) error {
				var k int
				if err := d.Decode(&k); err != nil {
					return err
				}
				mu.Lock()
				if got[pool] == nil {
					got[pool] = map[int]bool{}
				}
				got[pool][k] = true
				mu.Unlock()
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Stop() })
		}
	}
	pub := newNode(t, mm, "pub", ps)
	heard := func(k int) error {
		mu.Lock()
		defer mu.Unlock()
		var missing []int
		for p := range pools {
			if !got[fmt.Sprintf("pool-%d", p)][k] {
				missing = append(missing, p)
			}
		}
		if len(missing) > 0 {
			var heardBy []int
			for p := range pools {
				heardBy = append(heardBy, len(got[fmt.Sprintf("pool-%d", p)]))
			}
			return fmt.Errorf("notification %d: %d of %d pools have not heard it (%v); notifications heard by each pool %v", k, len(missing), pools, missing[:min(len(missing), 10)], heardBy)
		}
		return nil
	}
	// Warm up, one notification at a time, until every pool's
	// subscription has reached the proxies.
	ctx := ctxTimeout(t, 60*time.Second)
	warm := -1
	waitFor(t, 20*time.Second, func() error {
		if err := pub.Notify(ctx, relay.Notification{Topic: "events", EventType: "e", Payload: warm}); err != nil {
			return err
		}
		if err := testutil.Poll(2*time.Second, func() error { return heard(warm) }); err != nil {
			warm--
			return fmt.Errorf("%w (proxy drops so far %d)", err, drops.Load())
		}
		return nil
	})
	drops.Store(0)
	before := pub.Stats()
	for k := range notes {
		if err := pub.Notify(ctx, relay.Notification{Topic: "events", EventType: "e", Payload: k}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 20*time.Second, func() error {
		for k := range notes {
			if err := heard(k); err != nil {
				return err
			}
		}
		return nil
	})
	after := pub.Stats()
	if d := drops.Load(); d > 0 {
		t.Errorf("the publisher proxies refused part of a burst %d times (EAGAIN at a high-water mark)", d)
	}
	if d := after.DroppedCasts - before.DroppedCasts; d > 0 {
		t.Errorf("%d notifications reported undelivered", d)
	}
	t.Logf("publisher: %d resends, %d acks for %d notifications to %d pools", after.Resends-before.Resends, after.AcksReceived-before.AcksReceived, notes, pools)
}

// A burst of matchmaker changes (a registration storm: every node that
// registers announces a change to every other) makes a node in pub/sub
// mode look its publisher proxies up about once a second, not once per
// change: at every change, 1,000 proxied nodes made a million lookups and
// took 51 s to register (node scale).
func TestPubSubChangeBurstCoalesced(t *testing.T) {
	mm := newMatchmaker(t)
	startProxy(t, mm, proxy.WithAck(true))
	n := newNode(t, mm, "n1", relay.WithPubSub(true))
	m, err := matchmaker.Open(mm)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	lookups := func() uint64 { return n.Stats().MatchmakerOps["lookup"] }
	ctx := ctxTimeout(t, 10*time.Second)
	before := lookups()
	start := time.Now()
	const changes = 200
	for i := range changes {
		if err := m.Register(ctx, matchmaker.Key{Topic: fmt.Sprintf("storm-%d", i)}, "tcp://127.0.0.1:9", time.Minute); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond) // 200 changes over a second or more
	}
	took := time.Since(start)
	// Wait for the run the burst's last changes left pending (within
	// changeGap and its jitter): a lookup after the burst.
	last := lookups()
	waitFor(t, 5*time.Second, func() error {
		if lookups() == last {
			return errors.New("no lookup since the burst")
		}
		return nil
	})
	got := lookups() - before
	// syncPublishers looks up 2 keys (no local proxy: the central ones
	// too): per second of the burst and the wait after it, once for the
	// changes and once for the 1 s tick.
	secs := time.Since(start).Seconds()
	if max := uint64(2 * 2 * (secs + 2)); got > max {
		t.Errorf("%d changes over %v: the node looked up %d times, want at most %d (about 2 runs a second)", changes, took.Round(time.Millisecond), got, max)
	}
	t.Logf("%d changes over %v: %d lookups", changes, took.Round(time.Millisecond), got)
}
