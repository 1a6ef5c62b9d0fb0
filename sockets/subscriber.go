package sockets

import (
	"fmt"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/relay-dev/relay/curve"
)

// disconnectGrace is how long a Subscriber stays connected to a publisher
// that is no longer wanted, to receive what it still sends as it closes.
const disconnectGrace = 3 * time.Second

// SubscriberConfig configures a Subscriber loop: one SUB socket connected to
// a changing set of publisher endpoints, with a changing set of
// subscription prefixes.
type SubscriberConfig struct {
	Options Options
	// Republish, when set, makes the loop a local publisher proxy: it binds
	// an XPUB there and republishes every message it receives, unchanged.
	Republish *Bind
	// OnRecv gets each batch of messages [prefix, payload] in packed form;
	// the batch is the callee's to keep. Runs in the loop's goroutine and
	// must not block. Not called when republishing.
	OnRecv    func(batch Batch)
	OnDropped func(malformed, oversized int)
	OnDrop    func(reason error)
	// OnRefused gets each connection refused at its handshake, with why
	// (err wraps ErrUnauthorized): a publisher the SUB connects to that
	// refused it, or a subscriber refused by the republishing XPUB. A
	// refused publisher is connected to again after RefuseBackoff.
	OnRefused func(err error)
	OnFail    func(err error)
}

// Subscriber is a SUB socket loop.
type Subscriber struct {
	*handle
	cfg     SubscriberConfig
	ops     chan subOp
	wake    waker
	pub     string
	pubPort int
}

type subOp struct {
	connect   bool // else: disconnect
	endpoints []string
	subscribe []string // prefixes to add
	drop      []string // prefixes to remove
}

// StartSubscriber starts a Subscriber loop in a new goroutine.
func StartSubscriber(zctx *Context, cfg SubscriberConfig) (*Subscriber, error) {
	s := &Subscriber{cfg: cfg, ops: make(chan subOp, 64), wake: newWaker()}
	return startLoop("subscriber", cfg.OnFail, s, &s.handle, func(h *handle, started func()) error {
		return s.run(zctx, h, started)
	})
}

// Endpoint returns where the loop republishes ("" when it does not).
func (s *Subscriber) Endpoint() string { return s.pub }

// Port returns the port where the loop republishes (0 when it does not),
// for a new loop to bind the same one.
func (s *Subscriber) Port() int { return s.pubPort }

// Update connects to and disconnects from endpoints and adds and removes
// subscription prefixes. It does not wait for the loop.
func (s *Subscriber) Update(connect, disconnect, subscribe, unsubscribe []string) {
	if len(connect)+len(subscribe) > 0 {
		s.ops <- subOp{connect: true, endpoints: connect, subscribe: subscribe}
	}
	if len(disconnect)+len(unsubscribe) > 0 {
		s.ops <- subOp{endpoints: disconnect, drop: unsubscribe}
	}
	s.wake.wake()
}

// Tags of a Subscriber's sockets in its poller, and the first of their
// monitors'.
const (
	tagSub, tagRepublish = 0, 1
	tagSubMonitors       = 2
)

// subscriberLoop is a Subscriber's state in its goroutine. Loop only.
type subscriberLoop struct {
	s    *Subscriber
	sub  *batchSocket
	pub  *batchSocket // the XPUB it republishes on, or nil
	mons *monitors

	connected map[string]bool
	// A publisher that went away may still have messages on the way to us
	// (it flushes them as it closes): disconnect from it only after a grace
	// period, and never while it is wanted again.
	disconnectAt map[string]time.Time
	// A publisher that refused the handshake is not connected to again by
	// libzmq: disconnect, and connect again after RefuseBackoff.
	reconnectAt map[string]time.Time

	rc, rcPub receiver
	more      bool
}

// Runs in the loop's goroutine; owns the SUB (and the XPUB when republishing).
func (s *Subscriber) run(zctx *Context, h *handle, started func()) error {
	l := &subscriberLoop{s: s, more: true, connected: map[string]bool{},
		disconnectAt: map[string]time.Time{}, reconnectAt: map[string]time.Time{}}
	if err := l.open(zctx, h); err != nil {
		return err
	}
	s.wake.attach(h.p)
	defer s.wake.attach(nil)
	started()
	return h.serve(l, &s.wake, l.hasOps)
}

// open makes the SUB, and the XPUB it republishes on (bound) when it
// does, and monitors them. Runs in the loop's goroutine.
func (l *subscriberLoop) open(zctx *Context, h *handle) error {
	s := l.s
	var err error
	if l.sub, err = h.socket(zctx, zmq.SUB, s.cfg.Options, tagSub); err != nil {
		return fmt.Errorf("sockets: subscriber: %w", err)
	}
	// A SUB sends nothing but its subscriptions, each on every connection:
	// at a send high-water mark those past it would be dropped (a node
	// listening in many pools got nothing for most of them).
	if err := l.sub.z.SetSndhwm(0); err != nil {
		return fmt.Errorf("sockets: subscriber: sndhwm: %w", err)
	}
	watched := []*batchSocket{l.sub}
	if s.cfg.Republish != nil {
		if l.pub, err = h.socket(zctx, zmq.XPUB, s.cfg.Options, tagRepublish); err != nil {
			return fmt.Errorf("sockets: local publisher: %w", err)
		}
		if err := l.pub.z.SetXpubNodrop(true); err != nil {
			return fmt.Errorf("sockets: local publisher: xpub_nodrop: %w", err)
		}
		if s.pub, s.pubPort, err = s.cfg.Republish.bind(l.pub.z); err != nil {
			return err
		}
		watched = append(watched, l.pub)
	}
	if l.mons, err = watch(zctx, h, tagSubMonitors, l.refused, watched...); err != nil {
		return fmt.Errorf("sockets: subscriber: %w", err)
	}
	return nil
}

// hasOps reports whether an Update waits. Runs in the loop's goroutine
// (in sleep).
func (l *subscriberLoop) hasOps() bool { return len(l.s.ops) > 0 }

func (s *Subscriber) drop(err error) {
	if s.cfg.OnDrop != nil {
		s.cfg.OnDrop(err)
	}
}

// refused reports a failed handshake: a subscriber of the XPUB refused,
// or a publisher that refused the SUB, which is then disconnected from it
// and connects again after RefuseBackoff.
func (l *subscriberLoop) refused(hs handshake) {
	s := l.s
	if !hs.failed {
		return
	}
	if hs.server {
		if s.cfg.OnRefused != nil {
			s.cfg.OnRefused(fmt.Errorf("%w: a subscriber: %s", ErrUnauthorized, hs.reason))
		}
		return
	}
	if s.cfg.OnRefused != nil {
		s.cfg.OnRefused(fmt.Errorf("%w: %s: %s", ErrUnauthorized, hs.endpoint, hs.reason))
	}
	for full := range l.connected {
		if plainEndpoint(full) == hs.endpoint {
			_ = l.sub.z.Disconnect(hs.endpoint)
			l.reconnectAt[full] = time.Now().Add(RefuseBackoff)
		}
	}
}

// turn applies the Updates queued, reads what the SUB got (and discards
// the subscriptions the XPUB got), and disconnects and reconnects as due.
// Runs in the loop's goroutine.
func (l *subscriberLoop) turn(fired []int) (sleep bool, timeout time.Duration, err error) {
	s := l.s
	edge := false
	for _, i := range fired {
		edge = edge || i == tagSub
		if _, err := l.mons.handle(i); err != nil {
			return false, 0, fmt.Errorf("sockets: subscriber: %w", err)
		}
	}
	busy := false
ops:
	for {
		select {
		case op := <-s.ops:
			busy = true
			if err := s.apply(l.sub, op, l.connected, l.disconnectAt, s.drop); err != nil {
				return false, 0, err
			}
			l.more = true // option changes process commands: read again
		default:
			break ops
		}
	}
	if l.pub != nil {
		// Subscriptions of the local subscribers: read and discard.
		if batch, res := l.rcPub.recv(l.pub); res.err != nil {
			return false, 0, fmt.Errorf("sockets: local publisher: xpub recv: %w", res.err)
		} else if batch != nil {
			busy = true
		}
	}
	if edge || l.more || busy {
		got, err := l.recv()
		if err != nil {
			return false, 0, err
		}
		busy = busy || got
	}
	next := l.timers()
	// Sleep until an edge, an Update, or the next disconnect (the backlog
	// tick is short enough to check for it).
	return !busy && !l.more, backlogTimeout(!next.IsZero()), nil
}

// recv reads what the SUB holds and hands it to OnRecv, or republishes
// it. It reports whether anything came.
func (l *subscriberLoop) recv() (got bool, err error) {
	s := l.s
	batch, res := l.rc.recv(l.sub)
	if res.err != nil {
		return false, fmt.Errorf("sockets: subscriber: recv: %w", res.err)
	}
	if res.dropped+res.oversized > 0 && s.cfg.OnDropped != nil {
		s.cfg.OnDropped(res.dropped, res.oversized)
	}
	l.more = res.more
	if batch == nil {
		return false, nil
	}
	if l.pub == nil {
		s.cfg.OnRecv(Batch{buf: batch, n: res.n})
	} else if done, _, err := l.pub.send(batch); err != nil {
		s.drop(fmt.Errorf("%w: republish: %d of %d messages: %v", ErrDropped, res.n-countPacked(batch[:done]), res.n, err))
	}
	return true, nil
}

// timers disconnects from the publishers whose grace period ended and
// connects again to those whose refusal's back-off did, and returns when
// the next of those is due (zero: none).
func (l *subscriberLoop) timers() (next time.Time) {
	for ep, at := range l.disconnectAt {
		if !time.Now().Before(at) {
			_ = l.sub.z.Disconnect(plainEndpoint(ep))
			delete(l.connected, ep)
			delete(l.disconnectAt, ep)
			delete(l.reconnectAt, ep)
			l.more = true
			continue
		}
		if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	for ep, at := range l.reconnectAt {
		if !time.Now().Before(at) {
			delete(l.reconnectAt, ep)
			if err := connect(l.sub.z, l.s.cfg.Options.Curve, ep); err != nil {
				l.s.drop(fmt.Errorf("sockets: subscriber: connect %s: %w", ep, err))
			}
			continue
		}
		if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	return next
}

// apply carries out one Update. Runs in the loop's goroutine.
func (s *Subscriber) apply(sub *batchSocket, op subOp, connected map[string]bool, disconnectAt map[string]time.Time, drop func(error)) error {
	for _, ep := range op.endpoints {
		switch {
		case op.connect:
			delete(disconnectAt, ep)
			if connected[ep] {
				continue
			}
			if err := connect(sub.z, s.cfg.Options.Curve, ep); err != nil {
				drop(fmt.Errorf("sockets: subscriber: connect %s: %w", ep, err))
				continue
			}
			connected[ep] = true
		case connected[ep]:
			if _, ok := disconnectAt[ep]; !ok {
				disconnectAt[ep] = time.Now().Add(disconnectGrace)
			}
		}
	}
	for _, p := range op.subscribe {
		if err := sub.z.SetSubscribe(p); err != nil {
			return fmt.Errorf("sockets: subscriber: subscribe: %w", err)
		}
	}
	for _, p := range op.drop {
		if err := sub.z.SetUnsubscribe(p); err != nil {
			return fmt.Errorf("sockets: subscriber: unsubscribe: %w", err)
		}
	}
	return nil
}

// plainEndpoint is addr without the server key it may carry.
func plainEndpoint(addr string) string {
	ep, _, _, _ := curve.SplitMember(addr)
	return ep
}
