package relay

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relay-dev/relay/actors"
	"github.com/relay-dev/relay/matchmaker"
	"github.com/relay-dev/relay/proxy"
)

// Listener receives notifications. Make one with Node.Listen or
// Node.ListenBatch; Stop it when done.
type Listener struct {
	node   *Node
	pool   string
	topics []string // "T.p" entries
	handle func(*Delivery)

	batch *batcher // nil unless ListenBatch

	stopOnce sync.Once
	stopped  atomic.Bool
}

// Listen registers a listener for topics and calls h for each notification
// it receives, concurrently. A topic "T" receives every priority (as "T.p");
// "T.p" with p one of Priorities receives only that one. Listeners that
// share a pool name compete: each notification goes to exactly one of them;
// each distinct pool, and each listener with an empty pool, gets its own
// copy. An error from h is counted and logged.
func (n *Node) Listen(topics []string, pool string, h func(context.Context, *Delivery) error) (*Listener, error) {
	if h == nil {
		return nil, fmt.Errorf("%w: Listen with a nil handler", ErrBadTarget)
	}
	l, err := n.newListener(topics, pool)
	if err != nil {
		return nil, err
	}
	l.handle = func(d *Delivery) {
		n.runListener(d, func(ctx context.Context) error {
			if len(n.opts.serverInterceptors) == 0 {
				return h(ctx, d)
			}
			return n.interceptDelivery(ctx, d, h)
		})
	}
	return l, n.addListener(l)
}

// ListenBatch is Listen with deliveries grouped: h gets up to size
// notifications at once, or fewer once wait has passed since the first of
// the batch arrived. Batches are handed to h one at a time.
func (n *Node) ListenBatch(topics []string, pool string, size int, wait time.Duration, h func(context.Context, []*Delivery) error) (*Listener, error) {
	if h == nil || size < 1 || wait <= 0 {
		return nil, fmt.Errorf("%w: ListenBatch needs a handler, size >= 1 and wait > 0 (got size %d, wait %v)", ErrBadTarget, size, wait)
	}
	l, err := n.newListener(topics, pool)
	if err != nil {
		return nil, err
	}
	l.batch = newBatcher(size, wait, func(ds []*Delivery) {
		n.runListener(nil, func(ctx context.Context) error { return h(ctx, ds) })
	})
	if err := n.group.Go(l.batch.run); err != nil {
		return nil, n.downErr()
	}
	l.handle = l.batch.add
	if err := n.addListener(l); err != nil {
		l.batch.stop()
		return nil, err
	}
	return l, nil
}

func (n *Node) newListener(topics []string, pool string) (*Listener, error) {
	select {
	case <-n.down:
		return nil, n.downErr()
	default:
	}
	if len(topics) == 0 {
		return nil, fmt.Errorf("%w: Listen with no topics", ErrBadTarget)
	}
	if strings.ContainsAny(pool, "|") || strings.HasPrefix(pool, "$") {
		return nil, fmt.Errorf("%w: pool name %q may not contain '|' or start with '$'", ErrBadTarget, pool)
	}
	if pool == "" {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		pool = "$" + hex.EncodeToString(b) // a pool of its own
	}
	l := &Listener{node: n, pool: pool}
	for _, t := range topics {
		if t == "" || strings.Contains(t, "|") {
			return nil, fmt.Errorf("%w: bad listener topic %q", ErrBadTarget, t)
		}
		if i := strings.LastIndexByte(t, '.'); i > 0 && slices.Contains(Priorities, t[i+1:]) {
			l.topics = append(l.topics, t)
			continue
		}
		for _, p := range Priorities {
			l.topics = append(l.topics, t+"."+p)
		}
	}
	return l, nil
}

// addListener files l locally and registers it with the matchmaker.
func (n *Node) addListener(l *Listener) error {
	n.mu.Lock()
	for _, t := range l.topics {
		n.listeners[t] = append(n.listeners[t], l)
	}
	close(n.handled) // wakes deliveries waiting for a listener (startGrace)
	n.handled = make(chan struct{})
	n.mu.Unlock()
	n.topo.subscribe(l.prefixes()...)
	if err := n.deferRegistration(l.register(n.base)); err != nil {
		l.Stop()
		return fmt.Errorf("relay: listen %v: %w", l.topics, err)
	}
	return nil
}

// prefixes are the listener's subscriptions in pub/sub mode.
func (l *Listener) prefixes() []string {
	ps := make([]string, len(l.topics))
	for i, t := range l.topics {
		ps[i] = proxy.NotifyPrefix(t, l.member())
	}
	return ps
}

// member is the matchmaker member of the listener's pool on this node.
func (l *Listener) member() string { return l.node.sec.Member(l.pool + "|" + l.node.endpoint) }

func (l *Listener) register(ctx context.Context) error {
	if l.stopped.Load() {
		return nil
	}
	n := l.node
	es := make([]matchmaker.Entry, len(l.topics))
	for i, t := range l.topics {
		es[i] = matchmaker.Entry{Key: matchmaker.Key{Exchange: notifyExchange, Topic: t}, Addr: l.member()}
	}
	if err := n.mm.RegisterMany(ctx, es, n.opts.registrationTTL); err != nil {
		return fmt.Errorf("register %s: %w", strings.Join(l.topics, ", "), err)
	}
	return nil
}

// Stop unregisters the listener and stops its deliveries; a batch listener
// hands over what it holds first. Idempotent.
func (l *Listener) Stop() error {
	var errs []error
	l.stopOnce.Do(func() {
		l.stopped.Store(true)
		n := l.node
		n.mu.Lock()
		var unregister []string
		for _, t := range l.topics {
			ls := slices.DeleteFunc(n.listeners[t], func(x *Listener) bool { return x == l })
			if len(ls) == 0 {
				delete(n.listeners, t)
			} else {
				n.listeners[t] = ls
			}
			// Another listener of the same pool on this node keeps the
			// registration.
			if !slices.ContainsFunc(ls, func(x *Listener) bool { return x.pool == l.pool }) {
				unregister = append(unregister, t)
			}
		}
		n.mu.Unlock()
		for _, t := range unregister {
			k := matchmaker.Key{Exchange: notifyExchange, Topic: t}
			if err := n.mm.Unregister(context.Background(), k, l.member()); err != nil {
				errs = append(errs, fmt.Errorf("relay: unregister %s: %w", k, err))
			}
		}
		n.topo.unsubscribe(l.prefixes()...)
		if l.batch != nil {
			l.batch.stop()
		}
	})
	return errors.Join(errs...)
}

// localPool returns the local listeners of topic in pool.
func (n *Node) localPool(topic, poolName string) []*Listener {
	n.mu.RLock()
	defer n.mu.RUnlock()
	var pool []*Listener
	for _, l := range n.listeners[topic] {
		if l.pool == poolName {
			pool = append(pool, l)
		}
	}
	return pool
}

// deliver hands a NOTIFY message to one local listener of its pool. It runs
// in a handler worker.
func (n *Node) deliver(in *actors.Inbound) {
	h := in.Rec.Header()
	body, err := decodeNotifyBody(in.Rec.Body())
	if err != nil {
		n.counters.Malformed.Add(1)
		n.dropped.Warn("notification dropped: body does not decode", "id", h.ID, "err", err)
		return
	}
	poolName, _, _ := strings.Cut(h.Target.Server, "|") // pub/sub mode: "pool|endpoint"
	pool := n.localPool(h.Target.Topic, poolName)
	// A node that has just started may not listen yet (a listener restarted
	// on its old port is reached at once): wait for Listen, within
	// startGrace of the start and the notification's deadline.
	until := n.started.Add(startGrace)
	if dl := deadlineTime(h.Deadline); !dl.IsZero() && dl.Before(until) {
		until = dl
	}
	for len(pool) == 0 && n.awaitHandlers(until) {
		pool = n.localPool(h.Target.Topic, poolName)
	}
	if len(pool) == 0 {
		n.counters.FailedCasts.Add(1)
		n.dropped.Warn("notification dropped: no local listener of its pool", "topic", h.Target.Topic, "pool", h.Target.Server)
		return
	}
	l := pool[n.nextIndex(matchmaker.Key{Exchange: "$deliver", Topic: h.Target.Topic, Server: poolName}, len(pool))]
	topic, priority := h.Target.Topic, body.Priority
	if i := strings.LastIndexByte(topic, '.'); i > 0 {
		topic = topic[:i]
	}
	hdr, err := decodeMeta(h.Meta)
	if err != nil {
		n.counters.Malformed.Add(1)
		n.dropped.Warn("notification headers dropped", "id", h.ID, "err", err)
	}
	l.handle(&Delivery{
		Notification: Notification{Topic: topic, Priority: priority, EventType: h.Method,
			PublisherID: body.PublisherID, Timestamp: time.Unix(0, body.Timestamp)},
		ID:      h.ID.String(),
		Header:  hdr,
		payload: body.Payload,
	})
}

// interceptDelivery runs a listener's handler h for d inside the server
// interceptors, which see it as a Request of KindNotify: target exchange
// "$notify" and the topic, method the event type.
func (n *Node) interceptDelivery(ctx context.Context, d *Delivery, h func(context.Context, *Delivery) error) error {
	req := &Request{
		Method: d.EventType, Target: Target{Exchange: notifyExchange, Topic: d.Topic}, ID: d.ID,
		Cast: true, Kind: KindNotify, Header: d.Header, body: d.payload,
	}
	run := chainServer(n.opts.serverInterceptors, func(ctx context.Context, _ *Request) (any, error) { return nil, h(ctx, d) })
	_, err := run(ctx, req)
	return err
}

// runListener runs a listener's handler, counting its error or panic.
func (n *Node) runListener(d *Delivery, f func(context.Context) error) {
	defer func() {
		if r := recover(); r != nil {
			n.counters.HandlerPanics.Add(1)
			n.failed.Error("listener panicked", "panic", r, "stack", string(debug.Stack()))
		}
	}()
	if err := f(n.base); err != nil {
		n.counters.FailedCasts.Add(1)
		n.failed.Warn("listener failed", "err", err)
	}
}
