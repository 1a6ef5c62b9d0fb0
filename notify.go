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

	"github.com/vmihailenco/msgpack/v5"

	"github.com/relay-dev/relay/actors"
	"github.com/relay-dev/relay/envelope"
	"github.com/relay-dev/relay/matchmaker"
	"github.com/relay-dev/relay/proxy"
)

// Priorities are the notification priorities, lowest first. A listener's
// topic "T" receives priority p as "T.p".
var Priorities = []string{"audit", "debug", "info", "warn", "error", "critical", "sample"}

// notifyExchange is the matchmaker exchange of listener registrations.
const notifyExchange = "$notify"

// Notification is an event published by topic and priority.
type Notification struct {
	Topic       string
	Priority    string // one of Priorities; default "info"
	EventType   string
	PublisherID string // default: the publishing node's host
	Payload     any
	Timestamp   time.Time // default: when Notify was called
}

// Delivery is a notification received by a listener.
type Delivery struct {
	Notification // Payload is nil: use Decode
	// ID is the message id (32 hex digits).
	ID string
	// Header holds the headers the publisher sent (nil when none).
	Header Header

	payload []byte
}

// Decode decodes the notification's payload into v, a pointer.
func (d *Delivery) Decode(v any) error {
	if err := envelope.DecodeBody(d.payload, v); err != nil {
		return fmt.Errorf("relay: decode payload of %s event %q into %T: %w", d.Topic, d.EventType, v, err)
	}
	return nil
}

// notifyBody is the msgpack body of a NOTIFY message (docs/PROTOCOL.md).
type notifyBody struct {
	PublisherID string             `msgpack:"publisher_id"`
	Priority    string             `msgpack:"priority"`
	Timestamp   int64              `msgpack:"timestamp"` // Unix ns
	Payload     msgpack.RawMessage `msgpack:"payload"`
}

// decodeNotifyBody decodes the body of a NOTIFY message, as received.
func decodeNotifyBody(b []byte) (notifyBody, error) {
	var body notifyBody
	err := msgpack.Unmarshal(b, &body)
	return body, err
}

// Notify publishes note to every listener pool of its topic and priority:
// one listener of each pool receives it; a listener without a pool is a
// pool of its own. It returns once the messages are queued; with no
// listener registered it returns ErrNoServers. It carries ctx's headers
// (WithHeader).
func (n *Node) Notify(ctx context.Context, note Notification) error {
	if n.invoke != nil {
		deadline, ok := ctx.Deadline()
		if !ok {
			deadline = time.Now().Add(n.opts.callTimeout)
		}
		t := Target{Exchange: notifyExchange, Topic: note.Topic}
		return n.intercepted(ctx, KindNotify, t, note.EventType, deadline, note, nil)
	}
	return n.notify(ctx, note, outgoingOf(ctx))
}

// notify is Notify with the headers to send (out, nil for none).
func (n *Node) notify(ctx context.Context, note Notification, out *outgoing) error {
	select {
	case <-n.down:
		return n.downErr()
	default:
	}
	if note.Priority == "" {
		note.Priority = "info"
	}
	if !slices.Contains(Priorities, note.Priority) {
		return fmt.Errorf("%w: priority %q is not one of %v", ErrBadTarget, note.Priority, Priorities)
	}
	if note.Topic == "" {
		return fmt.Errorf("%w: notification without Topic", ErrBadTarget)
	}
	if note.PublisherID == "" {
		note.PublisherID = n.opts.host
	}
	if note.Timestamp.IsZero() {
		note.Timestamp = time.Now()
	}
	payload, err := envelope.EncodeBody(note.Payload)
	if err != nil {
		return fmt.Errorf("relay: notify %s: encode payload %T: %w", note.Topic, note.Payload, err)
	}
	body, err := msgpack.Marshal(&notifyBody{PublisherID: note.PublisherID, Priority: note.Priority,
		Timestamp: note.Timestamp.UnixNano(), Payload: payload})
	if err != nil {
		return fmt.Errorf("relay: notify %s: encode: %w", note.Topic, err)
	}
	topic := note.Topic + "." + note.Priority
	key := matchmaker.Key{Exchange: notifyExchange, Topic: topic}
	members, _, err := n.routes.lookup(ctx, key)
	if err != nil {
		return fmt.Errorf("relay: notify %s: look up listeners: %w", topic, err)
	}
	pools := make(map[string][]string)
	for _, m := range members {
		pool, addr, ok := strings.Cut(m, "|")
		if ok {
			pools[pool] = append(pools[pool], addr)
		}
	}
	if len(pools) == 0 {
		return fmt.Errorf("%w: no listener for notifications %s", ErrNoServers, topic)
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(n.opts.callTimeout)
	}
	for pool, addrs := range pools {
		id := envelope.NewMsgID() // one per copy: each may wait for its own ACK
		addr := addrs[n.nextIndex(matchmaker.Key{Exchange: notifyExchange, Topic: topic, Server: pool}, len(addrs))]
		hdr := envelope.Header{
			Kind: envelope.KindNotify, ID: id, Deadline: deadline.UnixNano(),
			Target: envelope.Target{Exchange: notifyExchange, Topic: topic, Server: pool},
			Method: note.EventType, ReplyTo: n.id,
		}
		if n.opts.pubsub {
			// Through a publisher proxy, to the chosen member's subscription.
			hdr.Target.Server = pool + "|" + addr
		}
		if err := setMeta(&hdr, out); err != nil {
			return err
		}
		if err := hdr.Validate(); err != nil {
			return fmt.Errorf("%w: notify: %v", ErrBadTarget, err)
		}
		rec := hdr.AppendRecord(nil, body)
		if n.opts.pubsub {
			if err := n.publish(ctx, &hdr, rec, deadline); err != nil {
				return fmt.Errorf("relay: notify %s to pool %s: %w", topic, pool, err)
			}
			continue
		}
		if err := n.push(ctx, n.viaInproc(addr), rec, deadline); err != nil {
			return fmt.Errorf("%w: notify %s to pool %s", err, topic, pool)
		}
	}
	return nil
}

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
	n.mu.Unlock()
	n.subscribe(l.prefixes()...)
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
		n.unsubscribe(l.prefixes()...)
		if l.batch != nil {
			l.batch.stop()
		}
	})
	return errors.Join(errs...)
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
	n.mu.RLock()
	var pool []*Listener
	for _, l := range n.listeners[h.Target.Topic] {
		if l.pool == poolName {
			pool = append(pool, l)
		}
	}
	n.mu.RUnlock()
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

// batcher groups deliveries for a batch listener. Its run loop is the only
// goroutine that calls the handler, so batches are handed over one at a time.
type batcher struct {
	size int
	wait time.Duration
	h    func([]*Delivery)
	in   chan *Delivery
	quit chan struct{}
	done chan struct{}
}

func newBatcher(size int, wait time.Duration, h func([]*Delivery)) *batcher {
	return &batcher{size: size, wait: wait, h: h, in: make(chan *Delivery, size),
		quit: make(chan struct{}), done: make(chan struct{})}
}

// add queues d; it waits while the batcher is busy (back-pressure on the
// dispatcher goroutine, not a drop).
func (b *batcher) add(d *Delivery) {
	select {
	case b.in <- d:
	case <-b.quit:
	}
}

// run collects and hands over batches until stop. Runs in its own goroutine.
func (b *batcher) run() {
	defer close(b.done)
	var batch []*Delivery
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	flush := func() {
		timer.Stop()
		if len(batch) > 0 {
			b.h(batch)
			batch = nil
		}
	}
	for {
		select {
		case d := <-b.in:
			batch = append(batch, d)
			if len(batch) == 1 {
				timer.Reset(b.wait)
			}
			if len(batch) >= b.size {
				flush()
			}
		case <-timer.C:
			flush()
		case <-b.quit:
			for {
				select {
				case d := <-b.in:
					batch = append(batch, d)
					if len(batch) >= b.size {
						flush()
					}
				default:
					flush()
					return
				}
			}
		}
	}
}

// stop hands over what is held and ends run.
func (b *batcher) stop() {
	close(b.quit)
	<-b.done
}
