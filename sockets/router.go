package sockets

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"syscall"
	"time"

	zmq "github.com/pebbe/zmq4"
)

// unreachableGrace is how long a reply without a deadline waits for its peer
// to (re)connect before it is dropped.
const unreachableGrace = time.Second

// RouterConfig configures a Router loop.
type RouterConfig struct {
	// Host is the address to bind, e.g. "127.0.0.1".
	Host string
	// Port to bind. 0 picks a free one from [PortMin, PortMax], retrying
	// ports that are busy. A fixed port is retried for up to BindRetry while
	// it is busy (a restarted loop rebinding its predecessor's port).
	Port             int
	PortMin, PortMax int
	BindRetry        time.Duration
	Options          Options
	BacklogMax       int
	// OnRecv gets each inbound message [routing-id, frames...]. It runs in
	// the loop's goroutine and must not block.
	OnRecv func(frames [][]byte)
	// OnDrop gets each message the loop gives up on, with the reason.
	OnDrop func(m *Message, err error)
	// OnFail gets the error that ended the loop after it was ready.
	OnFail func(err error)
}

// Router is the loop that owns a node's bound ROUTER socket.
type Router struct {
	*handle
	cfg      RouterConfig
	out      *Outbox
	endpoint string
	port     int
}

// StartRouter binds a ROUTER as cfg says and serves it in a new goroutine,
// sending what out holds. It returns once the socket is bound.
func StartRouter(zctx *Context, out *Outbox, cfg RouterConfig) (*Router, error) {
	if cfg.BacklogMax <= 0 {
		cfg.BacklogMax = 10_000
	}
	r := &Router{cfg: cfg, out: out}
	h, err := start("router", cfg.OnFail, func(h *handle, ready func()) error {
		return r.run(zctx, h, ready)
	})
	if err != nil {
		return nil, err
	}
	r.handle = h
	return r, nil
}

// Endpoint returns the bound endpoint, e.g. "tcp://127.0.0.1:7001".
func (r *Router) Endpoint() string { return r.endpoint }

// Port returns the bound port.
func (r *Router) Port() int { return r.port }

// Runs in the loop's goroutine; owns the ROUTER.
func (r *Router) run(zctx *Context, h *handle, ready func()) error {
	quit := h.quit
	s, err := zctx.z.NewSocket(zmq.ROUTER)
	if err != nil {
		return fmt.Errorf("sockets: new router: %w", err)
	}
	defer h.closeSocket(s)
	if err := r.cfg.Options.apply(s); err != nil {
		return fmt.Errorf("sockets: router: %w", err)
	}
	if err := s.SetRouterMandatory(1); err != nil {
		return fmt.Errorf("sockets: router: set router_mandatory: %w", err)
	}
	if err := s.SetRouterHandover(true); err != nil {
		return fmt.Errorf("sockets: router: set router_handover: %w", err)
	}
	bind := Bind{Host: r.cfg.Host, Port: r.cfg.Port, PortMin: r.cfg.PortMin, PortMax: r.cfg.PortMax, Retry: r.cfg.BindRetry}
	if r.endpoint, r.port, err = bind.bind(s); err != nil {
		return err
	}
	readyCh := make(chan struct{}, 1)
	w, err := watch(s, readyCh)
	if err != nil {
		return fmt.Errorf("sockets: router: %w", err)
	}
	defer w.close()
	ready()

	bl := newPeerBacklog(r.cfg.BacklogMax)
	drop := func(m *Message, err error) {
		if r.cfg.OnDrop != nil {
			r.cfg.OnDrop(m, err)
		}
	}
	more := true // read until EAGAIN: at start, after an edge, a full batch, a send
	try := func(m *Message) (bool, error) {
		// A send may process the socket's pending commands and so eat the
		// ZMQ_FD edge of a message that arrived: read again afterwards.
		more = true
		err := send(s, m.To, m.Header, m.Body)
		switch {
		case err == nil:
			return false, nil
		case isAgain(err):
			return true, nil
		case isUnreachable(err):
			// The peer may be reconnecting (after our restart or its own):
			// hold the message until its deadline.
			if m.Deadline == 0 {
				m.Deadline = time.Now().Add(unreachableGrace).UnixNano()
			}
			return true, nil
		default:
			return false, fmt.Errorf("sockets: router send: %w", err)
		}
	}
	defer bl.requeue(r.out, drop)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for !quitting(quit) {
		busy := false
		if w.signalled() || more {
			n, err := r.recv(s)
			if err != nil {
				return err
			}
			more = n == recvBatch
			busy = n > 0
			if bl.len() > 0 && bl.flush(try, drop) > 0 {
				busy = true
			}
		}
		r.out.rearm()
		for {
			m, ok := r.out.next()
			if !ok {
				break
			}
			busy = true
			if bl.holds(m.To) {
				// Keep each peer's replies in order behind its held ones.
				bl.add(m, drop)
				continue
			}
			retry, err := try(&m)
			if retry {
				bl.add(m, drop)
			} else if err != nil {
				drop(&m, err)
			}
		}
		if bl.len() > 0 {
			bl.expire(time.Now().UnixNano(), ErrUnreachable, drop)
		}
		// Replies held for a peer that is gone are not worth a Close's wait.
		r.out.settle(0)
		if !busy && !more {
			if wait(readyCh, r.out, quit, timer, bl.len() > 0) && bl.len() > 0 {
				bl.flush(try, drop)
			}
		}
	}
	return nil
}

// recv reads up to recvBatch messages and says how many. Runs in the loop's
// goroutine.
func (r *Router) recv(s *zmq.Socket) (int, error) {
	for i := 0; i < recvBatch; i++ {
		frames, err := s.RecvMessageBytes(zmq.DONTWAIT)
		if err != nil {
			if isAgain(err) {
				return i, nil
			}
			return i, fmt.Errorf("sockets: router recv: %w", err)
		}
		r.cfg.OnRecv(frames)
	}
	return recvBatch, nil
}

// Bind says where a loop's socket binds: Host and Port, or with Port 0 a
// free port from [PortMin, PortMax]. A fixed port that is busy is retried
// for up to Retry (a restarted loop rebinding its predecessor's port).
type Bind struct {
	Host             string
	Port             int
	PortMin, PortMax int
	Retry            time.Duration
}

// bind binds s as b says and returns the endpoint and port. Runs in the
// loop's goroutine.
func (b Bind) bind(s *zmq.Socket) (string, int, error) {
	host := b.Host
	if b.Port != 0 {
		ep := "tcp://" + joinHostPort(host, b.Port)
		deadline := time.Now().Add(b.Retry)
		for {
			err := s.Bind(ep)
			if err == nil {
				return ep, b.Port, nil
			}
			if zmq.AsErrno(err) != zmq.Errno(syscall.EADDRINUSE) || time.Now().After(deadline) {
				return "", 0, fmt.Errorf("sockets: bind %s: %w", ep, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	lo, hi := b.PortMin, b.PortMax
	if lo <= 0 || hi < lo {
		return "", 0, fmt.Errorf("sockets: bind %s: bad port range %d-%d", host, lo, hi)
	}
	span := hi - lo + 1
	first := rand.IntN(span)
	tries := min(span, 200)
	var lastErr error
	for i := 0; i < tries; i++ {
		port := lo + (first+i)%span
		ep := "tcp://" + joinHostPort(host, port)
		err := s.Bind(ep)
		if err == nil {
			return ep, port, nil
		}
		if zmq.AsErrno(err) != zmq.Errno(syscall.EADDRINUSE) {
			return "", 0, fmt.Errorf("sockets: bind %s: %w", ep, err)
		}
		lastErr = err
	}
	return "", 0, fmt.Errorf("sockets: bind %s: no free port in %d-%d after %d tries: %w", host, lo, hi, tries, lastErr)
}

func joinHostPort(host string, port int) string {
	for i := 0; i < len(host); i++ {
		if host[i] == ':' {
			return "[" + host + "]:" + strconv.Itoa(port)
		}
	}
	return host + ":" + strconv.Itoa(port)
}

// peerBacklog holds replies a Router could not send yet, oldest first. A
// peer that cannot take a message (not connected, or at its high-water
// mark) holds up only its own later messages, never other peers'.
type peerBacklog struct {
	backlog
	held map[string]int // messages held per peer routing id
}

func newPeerBacklog(max int) *peerBacklog {
	return &peerBacklog{backlog: backlog{max: max}, held: make(map[string]int)}
}

func (b *peerBacklog) len() int { return len(b.msgs) }

// holds reports whether messages to peer are held.
func (b *peerBacklog) holds(peer []byte) bool { return b.held[string(peer)] > 0 }

// add holds m, or drops it with ErrBackPressure when the backlog is full.
func (b *peerBacklog) add(m Message, drop func(*Message, error)) {
	if err := b.backlog.add(m); err != nil {
		drop(&m, err)
		return
	}
	b.held[string(m.To)]++
}

func (b *peerBacklog) release(peer []byte) {
	k := string(peer)
	if b.held[k]--; b.held[k] <= 0 {
		delete(b.held, k)
	}
}

// flush tries every held message in order, skipping peers that could not
// take an earlier one in this pass. It reports how many left the backlog.
func (b *peerBacklog) flush(try func(*Message) (bool, error), drop func(*Message, error)) int {
	blocked := make(map[string]bool)
	kept := b.msgs[:0]
	sent := 0
	for _, m := range b.msgs {
		if blocked[string(m.To)] {
			kept = append(kept, m)
			continue
		}
		retry, err := try(&m)
		if retry {
			blocked[string(m.To)] = true
			kept = append(kept, m)
			continue
		}
		if err != nil {
			drop(&m, err)
		}
		b.release(m.To)
		sent++
	}
	clear(b.msgs[len(kept):])
	b.msgs = kept
	return sent
}

// expire drops messages whose deadline has passed.
func (b *peerBacklog) expire(now int64, reason error, drop func(*Message, error)) {
	b.backlog.expire(now, reason, func(m *Message, err error) {
		b.release(m.To)
		drop(m, err)
	})
}

// requeue hands every held message back to out (or drop).
func (b *peerBacklog) requeue(out *Outbox, drop func(*Message, error)) {
	b.backlog.requeue(out, drop)
	clear(b.held)
}
