package sockets

import (
	"fmt"

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
	cfg                 RouterProxyConfig
	front, back         string
	frontPort, backPort int
}

// StartRouterProxy binds the proxy's sockets and serves them in a new
// goroutine.
func StartRouterProxy(zctx *Context, cfg RouterProxyConfig) (*RouterProxy, error) {
	p := &RouterProxy{cfg: cfg}
	h, err := start("router proxy", cfg.OnFail, func(h *handle, started func()) error {
		return p.run(zctx, h, started)
	})
	if err != nil {
		return nil, err
	}
	p.handle = h
	return p, nil
}

// Endpoints returns the bound frontend and backend endpoints.
func (p *RouterProxy) Endpoints() (front, back string) { return p.front, p.back }

// Ports returns the bound frontend and backend ports, for a new loop to
// bind the same ones.
func (p *RouterProxy) Ports() (front, back int) { return p.frontPort, p.backPort }

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

// Runs in the loop's goroutine; owns both ROUTERs.
func (p *RouterProxy) run(zctx *Context, h *handle, started func()) error {
	front, err := newSocket(zctx, h, zmq.ROUTER, p.cfg.Options)
	if err != nil {
		return fmt.Errorf("sockets: router proxy: %w", err)
	}
	defer front.close(h)
	back, err := newSocket(zctx, h, zmq.ROUTER, p.cfg.Options)
	if err != nil {
		return fmt.Errorf("sockets: router proxy: %w", err)
	}
	defer back.close(h)
	if p.front, p.frontPort, err = p.cfg.Front.bind(front.z); err != nil {
		return err
	}
	if p.back, p.backPort, err = p.cfg.Back.bind(back.z); err != nil {
		return err
	}
	const iF, iB = 0, 1
	if err := h.p.add(front.z, iF); err != nil {
		return fmt.Errorf("sockets: router proxy: %w", err)
	}
	if err := h.p.add(back.z, iB); err != nil {
		return fmt.Errorf("sockets: router proxy: %w", err)
	}
	frames := 2
	if p.cfg.Options.Curve != nil {
		front.withUserID()
		back.withUserID()
		frames = 3
	}
	mons, err := watch(zctx, h, 2, front, back)
	if err != nil {
		return fmt.Errorf("sockets: router proxy: %w", err)
	}
	defer mons.close()
	started()
	drop := func(err error) {
		if p.cfg.OnDrop != nil {
			p.cfg.OnDrop(err)
		}
	}
	var (
		rcF, rcB       receiver
		toBack, toFrnt grouper
		pk             packer
		fbuf           [][]byte
		moreF, moreB   = true, true
	)
	// forward sends the grouped records; a peer that is gone or full
	// loses them (senders with acks resend), counted.
	forward := func(s *batchSocket, g *grouper, side string) error {
		g.pack(&pk)
		buf := pk.bytes()
		for off := 0; off < len(buf); {
			done, _, err := s.send(buf[off:])
			off += done
			if err == nil {
				break
			}
			if !isUnreachable(err) && !isAgain(err) {
				return err
			}
			i := pk.indexAt(off)
			from, to := pk.messagesOf(i)
			drop(fmt.Errorf("%w: forward %d records to a %s: %v", ErrDropped, to-from, side, err))
			off = pk.ends[i]
		}
		return nil
	}
	read := func(s *batchSocket, rc *receiver, more *bool, side string, each func(from, caller []byte, v *envelope.View)) (bool, error) {
		batch, res := rc.recv(s)
		if res.err != nil {
			return false, fmt.Errorf("sockets: router proxy: %s recv: %w", side, res.err)
		}
		*more = res.more
		b := Batch{buf: batch, n: res.n}
		for {
			var ok bool
			if fbuf, ok = b.Next(fbuf); !ok {
				break
			}
			if len(fbuf) != frames {
				drop(fmt.Errorf("%w: %d frames from a %s", ErrDropped, len(fbuf)-(frames-2), side))
				continue
			}
			from, caller := fbuf[0], []byte(nil)
			if frames == 3 {
				caller = fbuf[2]
			}
			if _, err := envelope.Records(fbuf[1], func(v *envelope.View) bool { each(from, caller, v); return true }); err != nil {
				drop(fmt.Errorf("%w: from a %s: %v", ErrDropped, side, err))
			}
		}
		return res.n > 0, nil
	}
	var fired []int
	for !quitting(h.quit) {
		for _, i := range fired {
			moreF, moreB = moreF || i == iF, moreB || i == iB
			if _, err := mons.handle(i, func(hs handshake) {
				if hs.failed && p.cfg.OnRefused != nil {
					p.cfg.OnRefused(hs.reason)
				}
			}); err != nil {
				return fmt.Errorf("sockets: router proxy: %w", err)
			}
		}
		fired = fired[:0]
		busy := false
		if moreF {
			got, err := read(front, &rcF, &moreF, "client", func(from, caller []byte, v *envelope.View) {
				to, rec, ok := p.cfg.Request(from, caller, v)
				switch {
				case ok:
					toBack.add(to, rec)
				case p.cfg.Refuse != nil:
					toFrnt.add(from, p.cfg.Refuse(v))
				default:
					drop(fmt.Errorf("%w: no route", ErrDropped))
				}
			})
			if err != nil {
				return err
			}
			busy = busy || got
		}
		if moreB {
			got, err := read(back, &rcB, &moreB, "server", func(from, caller []byte, v *envelope.View) {
				if to, ok := p.cfg.Backend(from, caller, v); ok {
					toFrnt.add(to, v.Record())
				}
			})
			if err != nil {
				return err
			}
			busy = busy || got
		}
		if len(toBack.order) > 0 {
			if err := forward(back, &toBack, "server"); err != nil {
				return fmt.Errorf("sockets: router proxy: to server: %w", err)
			}
			moreB = true // a send may eat the ZMQ_FD edge of what arrived meanwhile
		}
		if len(toFrnt.order) > 0 {
			if err := forward(front, &toFrnt, "client"); err != nil {
				return fmt.Errorf("sockets: router proxy: to client: %w", err)
			}
			moreF = true
		}
		if !busy && !moreF && !moreB {
			fired = h.sleep(h.p, nil, nil, 0, fired)
		}
	}
	return nil
}
