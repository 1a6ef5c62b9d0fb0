package sockets

import (
	"fmt"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/relay-dev/relay/curve"
	"github.com/relay-dev/relay/envelope"
)

// ProxyConfig configures a publisher proxy loop: publishers' DEALERs send
// payloads of records to its frontend ROUTER; it publishes each record as
// [prefix, record] on its backend XPUB, where subscribers' SUBs are
// connected (records with the same prefix may share one payload).
type ProxyConfig struct {
	Front, Back Bind
	Options     Options
	// Prefix returns the subscription prefix of a record, or ok=false for
	// a record to drop (counted through OnDrop).
	Prefix func(v *envelope.View) (prefix []byte, ok bool)
	// Ack, when not nil, returns the ACK record for a record that was
	// published; the proxy sends it back to the publisher.
	Ack func(v *envelope.View) []byte
	// Nack, with Ack, returns the answer (an ERROR record) for a record
	// that no subscriber would receive: the publisher should try another
	// proxy rather than believe it delivered.
	Nack   func(v *envelope.View) []byte
	OnDrop func(reason error)
	// OnRefused gets each connection refused at its handshake, with why.
	OnRefused func(reason string)
	OnFail    func(err error)
}

// Proxy is a publisher proxy loop.
type Proxy struct {
	*handle
	cfg                 ProxyConfig
	front, back         string
	frontPort, backPort int
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

// Ports returns the bound frontend and backend ports, for a new loop to
// bind the same ones.
func (p *Proxy) Ports() (front, back int) { return p.frontPort, p.backPort }

// ErrDropped is the reason given to OnDrop for a message the proxy could
// not take: malformed, or the publishing side full.
var ErrDropped = fmt.Errorf("sockets: message dropped by the proxy")

// Runs in the loop's goroutine; owns both sockets.
func (p *Proxy) run(zctx *Context, h *handle, started func()) error {
	front, err := newSocket(zctx, h, zmq.ROUTER, p.cfg.Options)
	if err != nil {
		return fmt.Errorf("sockets: proxy: %w", err)
	}
	defer front.close(h)
	back, err := newSocket(zctx, h, zmq.XPUB, p.cfg.Options)
	if err != nil {
		return fmt.Errorf("sockets: proxy: %w", err)
	}
	defer back.close(h)
	// A full subscriber is EAGAIN, not a silent drop.
	if err := back.z.SetXpubNodrop(true); err != nil {
		return fmt.Errorf("sockets: proxy: xpub_nodrop: %w", err)
	}
	if p.front, p.frontPort, err = p.cfg.Front.bind(front.z); err != nil {
		return err
	}
	if p.back, p.backPort, err = p.cfg.Back.bind(back.z); err != nil {
		return err
	}
	const iF, iB = 0, 1
	if err := h.p.add(front.z, iF); err != nil {
		return fmt.Errorf("sockets: proxy: %w", err)
	}
	if err := h.p.add(back.z, iB); err != nil {
		return fmt.Errorf("sockets: proxy: %w", err)
	}
	mons, err := watch(zctx, h, 2, front, back)
	if err != nil {
		return fmt.Errorf("sockets: proxy: %w", err)
	}
	defer mons.close()
	started()
	drop := func(err error) {
		if p.cfg.OnDrop != nil {
			p.cfg.OnDrop(err)
		}
	}
	var (
		subs            = map[string]bool{} // subscription prefixes of the subscribers
		rcFront, rcBack receiver
		pub, answers    packer
		frames          [][]byte
		acks            [][]byte // the ACK of each record packed in pub, and its publisher
		ackTo           [][]byte
		moreF, moreB    = true, true
		fired           []int
	)
	for !quitting(h.quit) {
		edgeF, edgeB := false, false
		for _, i := range fired {
			edgeF, edgeB = edgeF || i == iF, edgeB || i == iB
			if _, err := mons.handle(i, func(hs handshake) {
				if hs.failed && p.cfg.OnRefused != nil {
					p.cfg.OnRefused(hs.reason)
				}
			}); err != nil {
				return fmt.Errorf("sockets: proxy: %w", err)
			}
		}
		fired = fired[:0]
		busy := false
		// Subscriptions arriving on the XPUB (byte 1 subscribe, 0
		// unsubscribe, then the prefix): the XPUB filters by itself; the
		// proxy keeps them to know whether anybody would get a message.
		if edgeB || moreB {
			batch, res := rcBack.recv(back)
			if res.err != nil {
				return fmt.Errorf("sockets: proxy: xpub recv: %w", res.err)
			}
			moreB = res.more
			b := Batch{buf: batch, n: res.n}
			for {
				var ok bool
				if frames, ok = b.Next(frames); !ok {
					break
				}
				busy = true
				if sub := frames[0]; len(sub) > 0 {
					if sub[0] == 1 {
						subs[string(sub[1:])] = true
					} else {
						delete(subs, string(sub[1:]))
					}
				}
			}
		}
		if !(edgeF || moreF) {
			if !busy && !moreB {
				fired = h.sleep(h.p, nil, nil, 0, fired)
			}
			continue
		}
		batch, res := rcFront.recv(front)
		if res.err != nil {
			return fmt.Errorf("sockets: proxy: router recv: %w", res.err)
		}
		moreF = res.more
		pub.reset()
		answers.reset()
		acks, ackTo = acks[:0], ackTo[:0]
		b := Batch{buf: batch, n: res.n}
		for {
			var ok bool
			if frames, ok = b.Next(frames); !ok {
				break
			}
			busy = true
			if len(frames) != 2 {
				drop(fmt.Errorf("%w: %d frames", ErrDropped, len(frames)))
				continue
			}
			from := frames[0]
			_, err := envelope.Records(frames[1], func(v *envelope.View) bool {
				prefix, ok := p.cfg.Prefix(v)
				switch {
				case !ok:
					drop(fmt.Errorf("%w: not a fanout or notification", ErrDropped))
				case !subscribed(subs, prefix):
					if p.cfg.Ack != nil && p.cfg.Nack != nil {
						answers.add(from, p.cfg.Nack(v))
					} else {
						drop(fmt.Errorf("%w: no subscriber", ErrDropped))
					}
				default:
					pub.add(prefix, v.Record())
					if p.cfg.Ack != nil {
						acks = append(acks, p.cfg.Ack(v))
						ackTo = append(ackTo, from)
					}
				}
				return true
			})
			if err != nil {
				drop(fmt.Errorf("%w: %v", ErrDropped, err))
			}
		}
		// Acknowledge what was published; what was not is not
		// acknowledged, and its publisher resends it through another proxy.
		done, readable, err := back.send(pub.bytes())
		// A send may eat the ZMQ_FD edge of what arrived meanwhile.
		moreB = moreB || readable
		published := pub.sent(done)
		if err != nil {
			drop(fmt.Errorf("%w: publish: %v", ErrDropped, err))
		}
		for i := 0; i < published && i < len(acks); i++ {
			answers.add(ackTo[i], acks[i])
		}
		_, readable, err = front.send(answers.bytes())
		if err != nil && !isUnreachable(err) && !isAgain(err) {
			return fmt.Errorf("sockets: proxy: answer: %w", err)
		}
		moreF = moreF || readable
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

// Runs in the loop's goroutine; owns the SUB (and the XPUB when republishing).
func (s *Subscriber) run(zctx *Context, h *handle, started func()) error {
	sub, err := newSocket(zctx, h, zmq.SUB, s.cfg.Options)
	if err != nil {
		return fmt.Errorf("sockets: subscriber: %w", err)
	}
	defer sub.close(h)
	var pub *batchSocket
	if s.cfg.Republish != nil {
		if pub, err = newSocket(zctx, h, zmq.XPUB, s.cfg.Options); err != nil {
			return fmt.Errorf("sockets: local publisher: %w", err)
		}
		defer pub.close(h)
		if err := pub.z.SetXpubNodrop(true); err != nil {
			return fmt.Errorf("sockets: local publisher: xpub_nodrop: %w", err)
		}
		if s.pub, s.pubPort, err = s.cfg.Republish.bind(pub.z); err != nil {
			return err
		}
	}
	const iSub = 0
	if err := h.p.add(sub.z, iSub); err != nil {
		return fmt.Errorf("sockets: subscriber: %w", err)
	}
	watched := []*batchSocket{sub}
	if pub != nil {
		if err := h.p.add(pub.z, 1); err != nil {
			return fmt.Errorf("sockets: local publisher: %w", err)
		}
		watched = append(watched, pub)
	}
	mons, err := watch(zctx, h, 2, watched...)
	if err != nil {
		return fmt.Errorf("sockets: subscriber: %w", err)
	}
	defer mons.close()
	s.wake.attach(h.p)
	defer s.wake.attach(nil)
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
	// A publisher that refused the handshake is not connected to again by
	// libzmq: disconnect, and connect again after RefuseBackoff.
	reconnectAt := map[string]time.Time{}
	refused := func(hs handshake) {
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
		for full := range connected {
			if plainEndpoint(full) == hs.endpoint {
				_ = sub.z.Disconnect(hs.endpoint)
				reconnectAt[full] = time.Now().Add(RefuseBackoff)
			}
		}
	}
	var rc, rcPub receiver
	var fired []int
	more := true
	for !quitting(h.quit) {
		edge := false
		for _, i := range fired {
			edge = edge || i == iSub
			if _, err := mons.handle(i, refused); err != nil {
				return fmt.Errorf("sockets: subscriber: %w", err)
			}
		}
		fired = fired[:0]
		busy := false
	ops:
		for {
			select {
			case op := <-s.ops:
				busy = true
				if err := s.apply(sub, op, connected, disconnectAt, drop); err != nil {
					return err
				}
				more = true // option changes process commands: read again
			default:
				break ops
			}
		}
		if pub != nil {
			// Subscriptions of the local subscribers: read and discard.
			if batch, res := rcPub.recv(pub); res.err != nil {
				return fmt.Errorf("sockets: local publisher: xpub recv: %w", res.err)
			} else if batch != nil {
				busy = true
			}
		}
		if edge || more || busy {
			batch, res := rc.recv(sub)
			if res.err != nil {
				return fmt.Errorf("sockets: subscriber: recv: %w", res.err)
			}
			if res.dropped+res.oversized > 0 && s.cfg.OnDropped != nil {
				s.cfg.OnDropped(res.dropped, res.oversized)
			}
			more = res.more
			if batch != nil {
				busy = true
				if pub == nil {
					s.cfg.OnRecv(Batch{buf: batch, n: res.n})
				} else if done, _, err := pub.send(batch); err != nil {
					drop(fmt.Errorf("%w: republish: %d of %d messages: %v", ErrDropped, res.n-countPacked(batch[:done]), res.n, err))
				}
			}
		}
		var next time.Time
		for ep, at := range disconnectAt {
			if !time.Now().Before(at) {
				_ = sub.z.Disconnect(plainEndpoint(ep))
				delete(connected, ep)
				delete(disconnectAt, ep)
				delete(reconnectAt, ep)
				more = true
				continue
			}
			if next.IsZero() || at.Before(next) {
				next = at
			}
		}
		for ep, at := range reconnectAt {
			if !time.Now().Before(at) {
				delete(reconnectAt, ep)
				if err := connect(sub.z, s.cfg.Options.Curve, ep); err != nil {
					drop(fmt.Errorf("sockets: subscriber: connect %s: %w", ep, err))
				}
				continue
			}
			if next.IsZero() || at.Before(next) {
				next = at
			}
		}
		if !busy && !more {
			// Sleep until an edge, an Update, or the next disconnect (the
			// backlog tick is short enough to check for it).
			fired = h.sleep(h.p, &s.wake, func() bool { return len(s.ops) > 0 }, backlogTimeout(!next.IsZero()), fired)
		}
	}
	return nil
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

// subscribed reports whether any subscription prefix matches prefix.
func subscribed(subs map[string]bool, prefix []byte) bool {
	for p := range subs {
		if len(p) <= len(prefix) && string(prefix[:len(p)]) == p {
			return true
		}
	}
	return false
}
