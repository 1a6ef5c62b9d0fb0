package sockets

import (
	"fmt"
	"time"

	zmq "github.com/pebbe/zmq4"
)

// ProxyConfig configures a publisher proxy loop: publishers' DEALERs send
// [header, body] to its frontend ROUTER; it publishes [prefix, header, body]
// on its backend XPUB, where subscribers' SUBs are connected.
type ProxyConfig struct {
	Front, Back Bind
	Options     Options
	// Prefix returns the subscription prefix of a message from its header
	// frame, or ok=false for a message to drop (counted through OnDrop).
	Prefix func(header []byte) (prefix []byte, ok bool)
	// Ack, when not nil, returns the ACK header for a message that was
	// published; the proxy sends it back to the publisher.
	Ack func(header []byte) []byte
	// Nack, with Ack, returns the answer (an ERROR header and body) for a
	// message that no subscriber would receive: the publisher should try
	// another proxy rather than believe it delivered.
	Nack   func(header []byte) (header2, body []byte)
	OnDrop func(reason error)
	OnFail func(err error)
}

// Proxy is a publisher proxy loop.
type Proxy struct {
	*handle
	cfg         ProxyConfig
	front, back string
}

// StartProxy binds the proxy's sockets and serves them in a new goroutine.
func StartProxy(zctx *Context, cfg ProxyConfig) (*Proxy, error) {
	p := &Proxy{cfg: cfg}
	h, err := start("proxy", cfg.OnFail, func(h *handle, ready func()) error {
		return p.run(zctx, h, ready)
	})
	if err != nil {
		return nil, err
	}
	p.handle = h
	return p, nil
}

// Endpoints returns the bound frontend and backend endpoints.
func (p *Proxy) Endpoints() (front, back string) { return p.front, p.back }

// ErrDropped is the reason given to OnDrop for a message the proxy could
// not take: malformed, or the publishing side full.
var ErrDropped = fmt.Errorf("sockets: message dropped by the proxy")

// Runs in the loop's goroutine; owns both sockets.
func (p *Proxy) run(zctx *Context, h *handle, started func()) error {
	front, err := zctx.z.NewSocket(zmq.ROUTER)
	if err != nil {
		return fmt.Errorf("sockets: proxy: new router: %w", err)
	}
	defer h.closeSocket(front)
	back, err := zctx.z.NewSocket(zmq.XPUB)
	if err != nil {
		return fmt.Errorf("sockets: proxy: new xpub: %w", err)
	}
	defer h.closeSocket(back)
	for _, s := range []*zmq.Socket{front, back} {
		if err := p.cfg.Options.apply(s); err != nil {
			return fmt.Errorf("sockets: proxy: %w", err)
		}
	}
	if err := front.SetRouterMandatory(1); err != nil {
		return fmt.Errorf("sockets: proxy: router_mandatory: %w", err)
	}
	// A full subscriber is EAGAIN, not a silent drop.
	if err := back.SetXpubNodrop(true); err != nil {
		return fmt.Errorf("sockets: proxy: xpub_nodrop: %w", err)
	}
	if p.front, _, err = p.cfg.Front.bind(front); err != nil {
		return err
	}
	if p.back, _, err = p.cfg.Back.bind(back); err != nil {
		return err
	}
	ready := make(chan struct{}, 1)
	wf, err := watch(front, ready)
	if err != nil {
		return fmt.Errorf("sockets: proxy: %w", err)
	}
	defer wf.close()
	wb, err := watch(back, ready)
	if err != nil {
		return fmt.Errorf("sockets: proxy: %w", err)
	}
	defer wb.close()
	started()
	quit := h.quit
	drop := func(err error) {
		if p.cfg.OnDrop != nil {
			p.cfg.OnDrop(err)
		}
	}
	subs := map[string]bool{} // subscription prefixes of the subscribers
	never := NewOutbox(1)     // the proxy has no outbox: it only forwards
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for !quitting(quit) {
		busy := false
		// Subscriptions arriving on the XPUB (byte 1 subscribe, 0
		// unsubscribe, then the prefix): the XPUB filters by itself; the
		// proxy keeps them to know whether anybody would get a message.
		for i := 0; i < recvBatch; i++ {
			sub, err := back.RecvBytes(zmq.DONTWAIT)
			if err != nil {
				if isAgain(err) {
					break
				}
				return fmt.Errorf("sockets: proxy: xpub recv: %w", err)
			}
			busy = true
			if len(sub) > 0 {
				if sub[0] == 1 {
					subs[string(sub[1:])] = true
				} else {
					delete(subs, string(sub[1:]))
				}
			}
		}
		for i := 0; i < recvBatch; i++ {
			frames, err := front.RecvMessageBytes(zmq.DONTWAIT)
			if err != nil {
				if isAgain(err) {
					break
				}
				return fmt.Errorf("sockets: proxy: router recv: %w", err)
			}
			busy = true
			if len(frames) != 3 {
				drop(fmt.Errorf("%w: %d frames", ErrDropped, len(frames)))
				continue
			}
			prefix, ok := p.cfg.Prefix(frames[1])
			if !ok {
				drop(fmt.Errorf("%w: bad header", ErrDropped))
				continue
			}
			if !subscribed(subs, prefix) {
				if p.cfg.Ack != nil && p.cfg.Nack != nil {
					h2, b2 := p.cfg.Nack(frames[1])
					if err := send(front, frames[0], h2, b2); err != nil && !isUnreachable(err) && !isAgain(err) {
						return fmt.Errorf("sockets: proxy: nack: %w", err)
					}
				} else {
					drop(fmt.Errorf("%w: no subscriber", ErrDropped))
				}
				continue
			}
			if err := send(back, prefix, frames[1], frames[2]); err != nil {
				// No ack: the publisher resends through another proxy.
				drop(fmt.Errorf("%w: publish: %v", ErrDropped, err))
				continue
			}
			if p.cfg.Ack != nil {
				if err := send(front, frames[0], p.cfg.Ack(frames[1]), nil); err != nil && !isUnreachable(err) && !isAgain(err) {
					return fmt.Errorf("sockets: proxy: ack: %w", err)
				}
			}
		}
		if !busy {
			wait(ready, never, quit, timer, false)
		}
	}
	return nil
}

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
	// OnRecv gets each message [prefix, header, body]. Runs in the loop's
	// goroutine and must not block. Not called when republishing.
	OnRecv func(frames [][]byte)
	OnDrop func(reason error)
	OnFail func(err error)
}

// Subscriber is a SUB socket loop.
type Subscriber struct {
	*handle
	cfg  SubscriberConfig
	ops  chan subOp
	wake chan struct{}
	pub  string
}

type subOp struct {
	connect   bool // else: disconnect
	endpoints []string
	subscribe []string // prefixes to add
	drop      []string // prefixes to remove
}

// StartSubscriber starts a Subscriber loop in a new goroutine.
func StartSubscriber(zctx *Context, cfg SubscriberConfig) (*Subscriber, error) {
	s := &Subscriber{cfg: cfg, ops: make(chan subOp, 64), wake: make(chan struct{}, 1)}
	h, err := start("subscriber", cfg.OnFail, func(h *handle, started func()) error {
		return s.run(zctx, h, started)
	})
	if err != nil {
		return nil, err
	}
	s.handle = h
	return s, nil
}

// Endpoint returns where the loop republishes ("" when it does not).
func (s *Subscriber) Endpoint() string { return s.pub }

// Update connects to and disconnects from endpoints and adds and removes
// subscription prefixes. It does not wait for the loop.
func (s *Subscriber) Update(connect, disconnect, subscribe, unsubscribe []string) {
	if len(connect)+len(subscribe) > 0 {
		s.ops <- subOp{connect: true, endpoints: connect, subscribe: subscribe}
	}
	if len(disconnect)+len(unsubscribe) > 0 {
		s.ops <- subOp{endpoints: disconnect, drop: unsubscribe}
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Runs in the loop's goroutine; owns the SUB (and the XPUB when republishing).
func (s *Subscriber) run(zctx *Context, h *handle, started func()) error {
	sub, err := zctx.z.NewSocket(zmq.SUB)
	if err != nil {
		return fmt.Errorf("sockets: subscriber: new sub: %w", err)
	}
	defer h.closeSocket(sub)
	if err := s.cfg.Options.apply(sub); err != nil {
		return fmt.Errorf("sockets: subscriber: %w", err)
	}
	var pub *zmq.Socket
	if s.cfg.Republish != nil {
		if pub, err = zctx.z.NewSocket(zmq.XPUB); err != nil {
			return fmt.Errorf("sockets: local publisher: new xpub: %w", err)
		}
		defer h.closeSocket(pub)
		if err := s.cfg.Options.apply(pub); err != nil {
			return fmt.Errorf("sockets: local publisher: %w", err)
		}
		if err := pub.SetXpubNodrop(true); err != nil {
			return fmt.Errorf("sockets: local publisher: xpub_nodrop: %w", err)
		}
		if s.pub, _, err = s.cfg.Republish.bind(pub); err != nil {
			return err
		}
	}
	ready := make(chan struct{}, 1)
	w, err := watch(sub, ready)
	if err != nil {
		return fmt.Errorf("sockets: subscriber: %w", err)
	}
	defer w.close()
	if pub != nil {
		wp, err := watch(pub, ready)
		if err != nil {
			return fmt.Errorf("sockets: local publisher: %w", err)
		}
		defer wp.close()
	}
	started()
	drop := func(err error) {
		if s.cfg.OnDrop != nil {
			s.cfg.OnDrop(err)
		}
	}
	connected := map[string]bool{}
	// A publisher that went away may still have messages on the way to us
	// (it flushes them as it closes): disconnect from it only after a grace
	// period, and never while it is wanted again.
	disconnectAt := map[string]time.Time{}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	more := true
	for !quitting(h.quit) {
		busy := false
	ops:
		for {
			select {
			case op := <-s.ops:
				busy = true
				for _, ep := range op.endpoints {
					switch {
					case op.connect:
						delete(disconnectAt, ep)
						if connected[ep] {
							continue
						}
						if err := sub.Connect(ep); err != nil {
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
					if err := sub.SetSubscribe(p); err != nil {
						return fmt.Errorf("sockets: subscriber: subscribe: %w", err)
					}
				}
				for _, p := range op.drop {
					if err := sub.SetUnsubscribe(p); err != nil {
						return fmt.Errorf("sockets: subscriber: unsubscribe: %w", err)
					}
				}
				more = true // option changes process commands: read again
			default:
				break ops
			}
		}
		if pub != nil {
			// Subscriptions of the local subscribers: read and discard.
			for i := 0; i < recvBatch; i++ {
				if _, err := pub.RecvBytes(zmq.DONTWAIT); err != nil {
					if isAgain(err) {
						break
					}
					return fmt.Errorf("sockets: local publisher: xpub recv: %w", err)
				}
				busy = true
			}
		}
		if w.signalled() || more || busy {
			n := 0
			for ; n < recvBatch; n++ {
				frames, err := sub.RecvMessageBytes(zmq.DONTWAIT)
				if err != nil {
					if isAgain(err) {
						break
					}
					return fmt.Errorf("sockets: subscriber: recv: %w", err)
				}
				if pub == nil {
					s.cfg.OnRecv(frames)
					continue
				}
				if err := send(pub, frames...); err != nil {
					drop(fmt.Errorf("%w: republish: %v", ErrDropped, err))
				}
			}
			more = n == recvBatch
			busy = busy || n > 0
		}
		var next time.Time
		for ep, at := range disconnectAt {
			if !time.Now().Before(at) {
				_ = sub.Disconnect(ep)
				delete(connected, ep)
				delete(disconnectAt, ep)
				more = true
				continue
			}
			if next.IsZero() || at.Before(next) {
				next = at
			}
		}
		if !busy && !more {
			var tc <-chan time.Time
			if !next.IsZero() {
				timer.Reset(time.Until(next))
				tc = timer.C
			}
			select {
			case <-ready:
			case <-s.wake:
			case <-h.quit:
			case <-tc:
			}
			timer.Stop()
		}
	}
	return nil
}

// subscribed reports whether any subscription prefix matches prefix.
func subscribed(subs map[string]bool, prefix []byte) bool {
	for p := range subs {
		if len(p) <= len(prefix) && string(prefix[:len(p)]) == p {
			return true
		}
	}
	return false
}
