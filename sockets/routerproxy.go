package sockets

import (
	"fmt"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/relay-dev/relay/envelope"
)

// RouterProxyConfig configures a router proxy loop: clients' DEALERs send
// requests to its frontend ROUTER, servers' DEALERs connect to its backend
// ROUTER. The proxy routes each record by its header alone and forwards
// the records of one destination together.
type RouterProxyConfig struct {
	Front, Back Bind
	Options     Options
	// Request is called for every record from a client (from: its
	// frontend routing id; caller: its public key in Z85 as the ZAP
	// handler admitted it, empty without CURVE). It returns the backend
	// routing id of the server the record names and the record to forward
	// (the caller's, stamped with where its answers go back to), or
	// ok=false when no such server is connected; then Refuse, when set,
	// gives the ERROR record to send back.
	Request func(from, caller []byte, v *envelope.View) (to, rec []byte, ok bool)
	Refuse  func(v *envelope.View) []byte
	// Backend is called for every record from a server (from: its backend
	// routing id; caller: its key, as for Request): it returns the
	// frontend routing id to forward it to (read from the stamp in a
	// reply's reply_to), or ok=false when the proxy consumed it (a HELLO)
	// or must drop it.
	Backend func(from, caller []byte, v *envelope.View) (to []byte, ok bool)
	OnDrop  func(reason error)
	// OnRefused gets each connection refused at its handshake, with why.
	OnRefused func(reason string)
	OnFail    func(err error)
}

// RouterProxy is a router proxy loop.
type RouterProxy struct {
	*handle
	pairEnds
	cfg RouterProxyConfig
}

// StartRouterProxy binds the proxy's sockets and serves them in a new
// goroutine.
func StartRouterProxy(zctx *Context, cfg RouterProxyConfig) (*RouterProxy, error) {
	p := &RouterProxy{cfg: cfg}
	return startLoop("router proxy", cfg.OnFail, p, &p.handle, func(h *handle, started func()) error {
		return p.run(zctx, h, started)
	})
}

// grouper collects records per destination routing id, so that each
// destination gets one payload per turn.
type grouper struct {
	order []string
	recs  map[string][][]byte
}

func (g *grouper) add(to, rec []byte) {
	if g.recs == nil {
		g.recs = map[string][][]byte{}
	}
	k := string(to)
	if _, ok := g.recs[k]; !ok {
		g.order = append(g.order, k)
	}
	g.recs[k] = append(g.recs[k], rec)
}

// pack packs the groups into p and empties g.
func (g *grouper) pack(p *packer) {
	p.reset()
	for _, k := range g.order {
		to := []byte(k)
		for _, rec := range g.recs[k] {
			p.add(to, rec)
		}
		delete(g.recs, k)
	}
	g.order = g.order[:0]
}

// routerProxyLoop is a RouterProxy's state in its goroutine. Loop only.
type routerProxyLoop struct {
	p              *RouterProxy
	front, back    *batchSocket
	mons           *monitors
	frames         int // of a message received: 2, or 3 with CURVE (the User-Id)
	rcF, rcB       receiver
	toBack, toFrnt grouper
	pk             packer
	fbuf           [][]byte
	moreF, moreB   bool
	// fromClient and fromServer are request and backend, bound once.
	fromClient, fromServer func(from, caller []byte, v *envelope.View)
}

// Runs in the loop's goroutine; owns both ROUTERs.
func (p *RouterProxy) run(zctx *Context, h *handle, started func()) error {
	l := &routerProxyLoop{p: p, frames: 2, moreF: true, moreB: true}
	l.fromClient, l.fromServer = l.request, l.backend
	var err error
	l.front, l.back, l.mons, err = p.open(zctx, h, "router proxy", zmq.ROUTER, zmq.ROUTER, p.cfg.Options, p.cfg.Front, p.cfg.Back, p.cfg.OnRefused)
	if err != nil {
		return err
	}
	if p.cfg.Options.Curve != nil {
		l.front.withUserID()
		l.back.withUserID()
		l.frames = 3
	}
	started()
	return h.serve(l, nil, nil)
}

func (p *RouterProxy) drop(err error) {
	if p.cfg.OnDrop != nil {
		p.cfg.OnDrop(err)
	}
}

// turn reads what both sides got, routes each record, and forwards them
// grouped per destination. Runs in the loop's goroutine.
func (l *routerProxyLoop) turn(fired []int) (sleep bool, timeout time.Duration, err error) {
	for _, i := range fired {
		l.moreF, l.moreB = l.moreF || i == tagFront, l.moreB || i == tagBack
		if _, err := l.mons.handle(i); err != nil {
			return false, 0, fmt.Errorf("sockets: router proxy: %w", err)
		}
	}
	busy := false
	if l.moreF {
		got, err := l.read(l.front, &l.rcF, &l.moreF, "client", l.fromClient)
		if err != nil {
			return false, 0, err
		}
		busy = busy || got
	}
	if l.moreB {
		got, err := l.read(l.back, &l.rcB, &l.moreB, "server", l.fromServer)
		if err != nil {
			return false, 0, err
		}
		busy = busy || got
	}
	if len(l.toBack.order) > 0 {
		if err := l.forward(l.back, &l.toBack, "server"); err != nil {
			return false, 0, fmt.Errorf("sockets: router proxy: to server: %w", err)
		}
		l.moreB = true // a send may eat the ZMQ_FD edge of what arrived meanwhile
	}
	if len(l.toFrnt.order) > 0 {
		if err := l.forward(l.front, &l.toFrnt, "client"); err != nil {
			return false, 0, fmt.Errorf("sockets: router proxy: to client: %w", err)
		}
		l.moreF = true
	}
	return !busy && !l.moreF && !l.moreB, 0, nil
}

// request routes a record from a client to its server, or refuses it.
func (l *routerProxyLoop) request(from, caller []byte, v *envelope.View) {
	p := l.p
	to, rec, ok := p.cfg.Request(from, caller, v)
	switch {
	case ok:
		l.toBack.add(to, rec)
	case p.cfg.Refuse != nil:
		l.toFrnt.add(from, p.cfg.Refuse(v))
	default:
		p.drop(fmt.Errorf("%w: no route", ErrDropped))
	}
}

// backend routes a record from a server back to its client.
func (l *routerProxyLoop) backend(from, caller []byte, v *envelope.View) {
	if to, ok := l.p.cfg.Backend(from, caller, v); ok {
		l.toFrnt.add(to, v.Record())
	}
}

// read receives what s holds and hands each of its records to each with
// its sender's routing id and key. It reports whether any message came.
func (l *routerProxyLoop) read(s *batchSocket, rc *receiver, more *bool, side string, each func(from, caller []byte, v *envelope.View)) (bool, error) {
	batch, res := rc.recv(s)
	if res.err != nil {
		return false, fmt.Errorf("sockets: router proxy: %s recv: %w", side, res.err)
	}
	*more = res.more
	b := Batch{buf: batch, n: res.n}
	for {
		var ok bool
		if l.fbuf, ok = b.Next(l.fbuf); !ok {
			break
		}
		if len(l.fbuf) != l.frames {
			l.p.drop(fmt.Errorf("%w: %d frames from a %s", ErrDropped, len(l.fbuf)-(l.frames-2), side))
			continue
		}
		from, caller := l.fbuf[0], []byte(nil)
		if l.frames == 3 {
			caller = l.fbuf[2]
		}
		if _, err := envelope.Records(l.fbuf[1], func(v *envelope.View) bool { each(from, caller, v); return true }); err != nil {
			l.p.drop(fmt.Errorf("%w: from a %s: %v", ErrDropped, side, err))
		}
	}
	return res.n > 0, nil
}

// forward sends the grouped records; a peer that is gone or full loses
// them (senders with acks resend), counted.
func (l *routerProxyLoop) forward(s *batchSocket, g *grouper, side string) error {
	g.pack(&l.pk)
	buf := l.pk.bytes()
	for off := 0; off < len(buf); {
		done, _, err := s.send(buf[off:])
		off += done
		if err == nil {
			break
		}
		if !isUnreachable(err) && !isAgain(err) {
			return err
		}
		i := l.pk.indexAt(off)
		from, to := l.pk.messagesOf(i)
		l.p.drop(fmt.Errorf("%w: forward %d records to a %s: %v", ErrDropped, to-from, side, err))
		off = l.pk.ends[i]
	}
	return nil
}
