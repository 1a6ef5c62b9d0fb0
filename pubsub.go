package relay

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/relay-dev/relay/actors"
	"github.com/relay-dev/relay/envelope"
	"github.com/relay-dev/relay/proxy"
)

// Pub/sub mode (WithPubSub): fanouts and notifications go through
// publisher proxies (package proxy) instead of one message per receiver.
// A node connects its SUB to its host's local proxy when there is one,
// else to every central proxy, and subscribes with proxy.FanoutPrefix and
// proxy.NotifyPrefix. A publisher sends each message through one proxy;
// with acks it waits for the proxy's ACK and resends through the next
// proxy when none comes. A receiver handles a msg_id once (resends are
// counted as duplicates). Calls and casts go the way of the topology
// pubsub wraps (direct or router proxy).
type pubsub struct {
	topology
	n *Node

	// mu guards the parsed publisher proxies and what they were parsed from.
	mu      sync.Mutex
	from    []string
	parsed  []proxy.PublisherMember
	windows sync.Map // publisher proxy front -> chan struct{}: the publish window
}

// start starts the wrapped topology, then fails when no publisher proxy
// is registered, and starts the watch of the publishers.
func (ps *pubsub) start(ctx context.Context) error {
	if err := ps.topology.start(ctx); err != nil {
		return err
	}
	n := ps.n
	members, err := n.mm.Lookup(ctx, proxy.PublishersKey)
	return n.requireProxies(len(members), err, "publisher", "--publisher", "WithPubSub", "publishers and subscribers", ps.watchPublishers)
}

// fanout publishes one FANOUT, which every subscriber of t's topic gets.
func (ps *pubsub) fanout(ctx context.Context, t Target, method string, args any, deadline time.Time, headers Header) error {
	h, rec, err := ps.n.fanoutRecord(t, method, args, deadline, headers)
	if err != nil {
		return err
	}
	if err := ps.publish(ctx, &h, rec, deadline); err != nil {
		return fmt.Errorf("relay: fanout %s on %s: %w", method, t, err)
	}
	return nil
}

// notify publishes one copy of a notification to the subscription of the
// pool's listener at addr.
func (ps *pubsub) notify(ctx context.Context, h *envelope.Header, body []byte, addr string, deadline time.Time, headers Header) error {
	pool := h.Target.Server
	h.Target.Server = pool + "|" + addr
	rec, err := notifyRecord(h, body, headers)
	if err != nil {
		return err
	}
	if err := ps.publish(ctx, h, rec, deadline); err != nil {
		return fmt.Errorf("relay: notify %s to pool %s: %w", h.Target.Topic, pool, err)
	}
	return nil
}

const (
	dedupSize      = 1 << 16
	dedupTTL       = 5 * time.Minute
	proxyWatchTick = time.Second
)

// publishers returns the registered central proxies, parsed once per
// change of the registration (the route cache follows the matchmaker's
// change notices), not at every publish.
func (ps *pubsub) publishers(ctx context.Context) ([]proxy.PublisherMember, error) {
	members, _, err := ps.n.routes.lookup(ctx, proxy.PublishersKey)
	if err != nil {
		return nil, fmt.Errorf("relay: look up publisher proxies: %w", err)
	}
	if len(members) == 0 {
		return nil, nil
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if len(ps.from) == len(members) && &ps.from[0] == &members[0] {
		return ps.parsed, nil
	}
	var pubs []proxy.PublisherMember
	for _, m := range members {
		if p, ok := proxy.ParsePublisher(m); ok {
			pubs = append(pubs, p)
		}
	}
	ps.from, ps.parsed = members, pubs
	return pubs, nil
}

// publish sends a FANOUT or NOTIFY through a publisher proxy, the next one
// round-robin (a proxy that missed an ACK lately last). Without acks it is
// sent once. With acks it is published with a window of unacknowledged
// messages per proxy (WithPublishWindow): publish returns once the message
// is sent and waits only while the window is full; the resender sends it
// again through the next proxy until a proxy acknowledges it, and one no
// proxy acknowledges by its deadline is reported undelivered
// (WithUndelivered).
func (ps *pubsub) publish(ctx context.Context, hdr *envelope.Header, rec []byte, deadline time.Time) error {
	n := ps.n
	pubs, err := ps.publishers(ctx)
	if err != nil {
		return err
	}
	if len(pubs) == 0 {
		return fmt.Errorf("%w: no publisher proxy registered (WithPubSub is on: start one with `node proxy --publisher`)", ErrNoServers)
	}
	start := n.nextIndex(proxy.PublishersKey, len(pubs))
	order := make([]proxy.PublisherMember, 0, len(pubs))
	order = append(append(order, pubs[start:]...), pubs[:start]...)
	now := time.Now()
	// Proxies that missed an ACK lately go last: one that did is
	// probably gone, and its registration outlives it by up to a TTL.
	slices.SortStableFunc(order, func(a, b proxy.PublisherMember) int {
		sa, sb := n.suspects.has(a.Front, now), n.suspects.has(b.Front, now)
		switch {
		case sa == sb:
			return 0
		case sb:
			return -1
		}
		return 1
	})
	p := order[0]
	if !p.Ack {
		return n.push(ctx, p.Front, rec, deadline)
	}
	fronts := make([]string, len(order))
	for i, o := range order {
		fronts[i] = o.Front
	}
	window := ps.window(p.Front)
	select {
	case window <- struct{}{}:
	default:
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		select {
		case window <- struct{}{}:
		case <-t.C:
			return fmt.Errorf("%w: publish window of %s full until the deadline (WithPublishWindow %d)", ErrBackPressure, p.Front, cap(window))
		case <-ctx.Done():
			return ctx.Err()
		case <-n.down:
			return n.downErr()
		}
	}
	c := n.pending.GetFor(hdr.ID, deadline)
	c.Rec, c.Addr = rec, p.Front
	n.resender.Resent(c, fronts, true)
	c.OnFinish(func(res actors.Result) {
		<-window
		if res.Err == nil && n.resender.Attempts(c) > 0 {
			n.suspects.add(p.Front, time.Now().Add(suspectFor))
		}
		n.settled(c, res, false)
	})
	n.pending.Add(c)
	if err := n.push(ctx, p.Front, rec, deadline); err != nil {
		if n.pending.Take(c.ID) != nil {
			<-window
		}
		return err
	}
	n.resender.Schedule(c)
	return nil
}

// window returns the window of unacknowledged publishes through the proxy
// at front: a slot is taken per publish and given back at its ACK (or its
// end).
func (ps *pubsub) window(front string) chan struct{} {
	if w, ok := ps.windows.Load(front); ok {
		return w.(chan struct{})
	}
	w, _ := ps.windows.LoadOrStore(front, make(chan struct{}, ps.n.opts.publishWindow))
	return w.(chan struct{})
}

// watchPublishers keeps the subscriber connected to the right proxies.
// Runs in its own goroutine.
func (ps *pubsub) watchPublishers() { ps.n.everyChange(proxyWatchTick, ps.syncPublishers) }

// changeGap is the least time between two runs of everyChange's f that
// matchmaker changes bring about (a quarter more at random, so that nodes
// told of the same change do not come back together). A registration
// storm is a change announced to every node by every node: run at each,
// the watchers of N nodes made N² lookups (and HELLOs) and node scale's
// 1,000 proxied nodes took 51 s to register, with Redis unreachable.
const changeGap = time.Second

// everyChange runs f now, at every matchmaker change and every period,
// until the node goes down: a change that comes within changeGap of the
// last run that a change brought about waits for the end of the gap,
// together with any that come meanwhile. Runs in the caller's goroutine.
func (n *Node) everyChange(period time.Duration, f func()) {
	t := time.NewTicker(period)
	defer t.Stop()
	var lastChange time.Time // the last run a change brought about
	for {
		changed := n.mm.Changed()
		f()
		select {
		case <-n.down:
			return
		case <-changed:
			if wait := time.Until(lastChange.Add(changeGap)); wait > 0 {
				gap := time.NewTimer(wait + rand.N(changeGap/4))
				select {
				case <-n.down:
					gap.Stop()
					return
				case <-gap.C:
				}
			}
			lastChange = time.Now()
		case <-t.C:
		}
	}
}

// syncPublishers points the SUB at the host's local publisher proxy,
// else at every central one.
func (ps *pubsub) syncPublishers() {
	n := ps.n
	ctx, cancel := context.WithTimeout(n.base, 2*time.Second)
	defer cancel()
	local, err := n.mm.Lookup(ctx, proxy.LocalPublishersKey(n.opts.host))
	if err != nil {
		n.log.Warn("look up local publisher proxy", "err", err)
		return
	}
	eps, _ := n.admitted(local)
	if len(eps) == 0 {
		members, err := n.mm.Lookup(ctx, proxy.PublishersKey)
		if err != nil {
			n.log.Warn("look up publisher proxies", "err", err)
			return
		}
		members, _ = n.admitted(members)
		for _, m := range members {
			if p, ok := proxy.ParsePublisher(m); ok {
				eps = append(eps, p.Back)
			}
		}
	}
	n.subState.SetEndpoints(eps)
	n.system.Root.Send(n.pids[ActorSubscriber], actors.Sync{})
}

// subscribe and unsubscribe change what the node's SUB follows.
func (ps *pubsub) subscribe(prefixes ...string) {
	n := ps.n
	n.subState.Subscribe(prefixes...)
	n.system.Root.Send(n.pids[ActorSubscriber], actors.Sync{})
}

func (ps *pubsub) unsubscribe(prefixes ...string) {
	n := ps.n
	n.subState.Unsubscribe(prefixes...)
	n.system.Root.Send(n.pids[ActorSubscriber], actors.Sync{})
}
