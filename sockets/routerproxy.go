package sockets

import (
	"fmt"
	"time"

	zmq "github.com/pebbe/zmq4"
)

// RouterProxyConfig configures a router proxy loop: clients' DEALERs send
// requests to its frontend ROUTER, servers' DEALERs connect to its backend
// ROUTER. The proxy routes from the header frame alone and forwards the
// frames as they are.
type RouterProxyConfig struct {
	Front, Back Bind
	Options     Options
	// Request returns the backend routing id of the server a request's
	// header names, or ok=false when no such server is connected; then
	// Refuse, when set, gives the ERROR [header, body] to send back.
	Request func(header []byte) (to []byte, ok bool)
	Refuse  func(header []byte) (h, body []byte)
	// Backend is called for every message from a server: it returns the
	// frontend routing id to forward it to (a reply's reply_to), or
	// ok=false when the proxy consumed it (a HELLO) or must drop it.
	Backend func(from, header, body []byte) (to []byte, ok bool)
	OnDrop  func(reason error)
	OnFail  func(err error)
}

// RouterProxy is a router proxy loop.
type RouterProxy struct {
	*handle
	cfg         RouterProxyConfig
	front, back string
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

// Runs in the loop's goroutine; owns both ROUTERs.
func (p *RouterProxy) run(zctx *Context, h *handle, started func()) error {
	var socks [2]*zmq.Socket
	for i := range socks {
		s, err := zctx.z.NewSocket(zmq.ROUTER)
		if err != nil {
			return fmt.Errorf("sockets: router proxy: new router: %w", err)
		}
		defer h.closeSocket(s)
		if err := p.cfg.Options.apply(s); err != nil {
			return fmt.Errorf("sockets: router proxy: %w", err)
		}
		if err := s.SetRouterMandatory(1); err != nil {
			return fmt.Errorf("sockets: router proxy: router_mandatory: %w", err)
		}
		if err := s.SetRouterHandover(true); err != nil {
			return fmt.Errorf("sockets: router proxy: router_handover: %w", err)
		}
		socks[i] = s
	}
	front, back := socks[0], socks[1]
	var err error
	if p.front, _, err = p.cfg.Front.bind(front); err != nil {
		return err
	}
	if p.back, _, err = p.cfg.Back.bind(back); err != nil {
		return err
	}
	ready := make(chan struct{}, 1)
	for _, s := range socks {
		w, err := watch(s, ready)
		if err != nil {
			return fmt.Errorf("sockets: router proxy: %w", err)
		}
		defer w.close()
	}
	started()
	drop := func(err error) {
		if p.cfg.OnDrop != nil {
			p.cfg.OnDrop(err)
		}
	}
	forward := func(s *zmq.Socket, frames ...[]byte) error {
		err := send(s, frames...)
		if err != nil && (isUnreachable(err) || isAgain(err)) {
			// The peer is gone or full: the sender resends (acks).
			drop(fmt.Errorf("%w: forward: %v", ErrDropped, err))
			return nil
		}
		return err
	}
	never := NewOutbox(1)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for !quitting(h.quit) {
		busy := false
		for i := 0; i < recvBatch; i++ {
			frames, err := front.RecvMessageBytes(zmq.DONTWAIT)
			if err != nil {
				if isAgain(err) {
					break
				}
				return fmt.Errorf("sockets: router proxy: front recv: %w", err)
			}
			busy = true
			if len(frames) != 3 {
				drop(fmt.Errorf("%w: %d frames from a client", ErrDropped, len(frames)))
				continue
			}
			to, ok := p.cfg.Request(frames[1])
			if !ok {
				if p.cfg.Refuse != nil {
					rh, rb := p.cfg.Refuse(frames[1])
					if err := forward(front, frames[0], rh, rb); err != nil {
						return fmt.Errorf("sockets: router proxy: refuse: %w", err)
					}
				} else {
					drop(fmt.Errorf("%w: no route", ErrDropped))
				}
				continue
			}
			if err := forward(back, to, frames[1], frames[2]); err != nil {
				return fmt.Errorf("sockets: router proxy: to server: %w", err)
			}
		}
		for i := 0; i < recvBatch; i++ {
			frames, err := back.RecvMessageBytes(zmq.DONTWAIT)
			if err != nil {
				if isAgain(err) {
					break
				}
				return fmt.Errorf("sockets: router proxy: back recv: %w", err)
			}
			busy = true
			if len(frames) != 3 {
				drop(fmt.Errorf("%w: %d frames from a server", ErrDropped, len(frames)))
				continue
			}
			to, ok := p.cfg.Backend(frames[0], frames[1], frames[2])
			if !ok {
				continue
			}
			if err := forward(front, to, frames[1], frames[2]); err != nil {
				return fmt.Errorf("sockets: router proxy: to client: %w", err)
			}
		}
		if !busy {
			wait(ready, never, h.quit, timer, false)
		}
	}
	return nil
}
