package sockets

import (
	"fmt"
	"time"

	zmq "github.com/pebbe/zmq4"

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
	pairEnds
	cfg ProxyConfig
}

// StartProxy binds the proxy's sockets and serves them in a new goroutine.
func StartProxy(zctx *Context, cfg ProxyConfig) (*Proxy, error) {
	p := &Proxy{cfg: cfg}
	return startLoop("proxy", cfg.OnFail, p, &p.handle, func(h *handle, ready func()) error {
		return p.run(zctx, h, ready)
	})
}

// ErrDropped is the reason given to OnDrop for a message the proxy could
// not take: malformed, or the publishing side full.
var ErrDropped = fmt.Errorf("sockets: message dropped by the proxy")

// proxyLoop is a Proxy's state in its goroutine. Loop only.
type proxyLoop struct {
	p               *Proxy
	front, back     *batchSocket
	mons            *monitors
	subs            map[string]bool // subscription prefixes of the subscribers
	rcFront, rcBack receiver
	pub, answers    packer
	frames          [][]byte
	acks            [][]byte // the ACK of each record packed in pub, and its publisher
	ackTo           [][]byte
	moreF, moreB    bool
}

// Runs in the loop's goroutine; owns both sockets.
func (p *Proxy) run(zctx *Context, h *handle, started func()) error {
	l := &proxyLoop{p: p, subs: map[string]bool{}, moreF: true, moreB: true}
	var err error
	l.front, l.back, l.mons, err = p.open(zctx, h, "proxy", zmq.ROUTER, zmq.XPUB, p.cfg.Options, p.cfg.Front, p.cfg.Back, p.cfg.OnRefused)
	if err != nil {
		return err
	}
	// A full subscriber is EAGAIN, not a silent drop.
	if err := l.back.z.SetXpubNodrop(true); err != nil {
		return fmt.Errorf("sockets: proxy: xpub_nodrop: %w", err)
	}
	started()
	return h.serve(l, nil, nil)
}

func (p *Proxy) drop(err error) {
	if p.cfg.OnDrop != nil {
		p.cfg.OnDrop(err)
	}
}

// turn takes the subscriptions the XPUB got, then publishes what the
// frontend got and answers its publishers. Runs in the loop's goroutine.
func (l *proxyLoop) turn(fired []int) (sleep bool, timeout time.Duration, err error) {
	edgeF, edgeB := false, false
	for _, i := range fired {
		edgeF, edgeB = edgeF || i == tagFront, edgeB || i == tagBack
		if _, err := l.mons.handle(i); err != nil {
			return false, 0, fmt.Errorf("sockets: proxy: %w", err)
		}
	}
	busy := false
	if edgeB || l.moreB {
		got, err := l.subscriptions()
		if err != nil {
			return false, 0, err
		}
		busy = got
	}
	if !(edgeF || l.moreF) {
		return !busy && !l.moreB, 0, nil
	}
	batch, res := l.rcFront.recv(l.front)
	if res.err != nil {
		return false, 0, fmt.Errorf("sockets: proxy: router recv: %w", res.err)
	}
	l.moreF = res.more
	l.pack(Batch{buf: batch, n: res.n})
	return false, 0, l.publish()
}

// subscriptions reads those arriving on the XPUB (byte 1 subscribe, 0
// unsubscribe, then the prefix): the XPUB filters by itself; the proxy
// keeps them to know whether anybody would get a message. It reports
// whether any came.
func (l *proxyLoop) subscriptions() (got bool, err error) {
	batch, res := l.rcBack.recv(l.back)
	if res.err != nil {
		return false, fmt.Errorf("sockets: proxy: xpub recv: %w", res.err)
	}
	l.moreB = res.more
	b := Batch{buf: batch, n: res.n}
	for {
		var ok bool
		if l.frames, ok = b.Next(l.frames); !ok {
			return got, nil
		}
		got = true
		if sub := l.frames[0]; len(sub) > 0 {
			if sub[0] == 1 {
				l.subs[string(sub[1:])] = true
			} else {
				delete(l.subs, string(sub[1:]))
			}
		}
	}
}

// pack packs the records of b to publish, their ACKs, and the answers of
// those nobody would receive.
func (l *proxyLoop) pack(b Batch) {
	p := l.p
	l.pub.reset()
	l.answers.reset()
	l.acks, l.ackTo = l.acks[:0], l.ackTo[:0]
	for {
		var ok bool
		if l.frames, ok = b.Next(l.frames); !ok {
			return
		}
		if len(l.frames) != 2 {
			p.drop(fmt.Errorf("%w: %d frames", ErrDropped, len(l.frames)))
			continue
		}
		from := l.frames[0]
		_, err := envelope.Records(l.frames[1], func(v *envelope.View) bool {
			prefix, ok := p.cfg.Prefix(v)
			switch {
			case !ok:
				p.drop(fmt.Errorf("%w: not a fanout or notification", ErrDropped))
			case !subscribed(l.subs, prefix):
				if p.cfg.Ack != nil && p.cfg.Nack != nil {
					l.answers.add(from, p.cfg.Nack(v))
				} else {
					p.drop(fmt.Errorf("%w: no subscriber", ErrDropped))
				}
			default:
				l.pub.add(prefix, v.Record())
				if p.cfg.Ack != nil {
					l.acks = append(l.acks, p.cfg.Ack(v))
					l.ackTo = append(l.ackTo, from)
				}
			}
			return true
		})
		if err != nil {
			p.drop(fmt.Errorf("%w: %v", ErrDropped, err))
		}
	}
}

// publish sends what pack packed on the XPUB, and acknowledges what was
// published; what was not is not acknowledged, and its publisher resends
// it through another proxy.
func (l *proxyLoop) publish() error {
	done, readable, err := l.back.send(l.pub.bytes())
	// A send may eat the ZMQ_FD edge of what arrived meanwhile.
	l.moreB = l.moreB || readable
	published := l.pub.sent(done)
	if err != nil {
		l.p.drop(fmt.Errorf("%w: publish: %v", ErrDropped, err))
	}
	for i := 0; i < published && i < len(l.acks); i++ {
		l.answers.add(l.ackTo[i], l.acks[i])
	}
	_, readable, err = l.front.send(l.answers.bytes())
	if err != nil && !isUnreachable(err) && !isAgain(err) {
		return fmt.Errorf("sockets: proxy: answer: %w", err)
	}
	l.moreF = l.moreF || readable
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
