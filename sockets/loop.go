package sockets

import (
	"fmt"
	"sync/atomic"
	"syscall"
	"time"

	zmq "github.com/pebbe/zmq4"
)

// pollBacklog is how often a loop with unsent messages looks at them again
// even when nothing else happens (to expire them).
const pollBacklog = 5 * time.Millisecond

// handle is what every loop shares: its goroutine, the quit signal, and
// its poller (which Stop kicks, so that a sleeping loop sees quit).
type handle struct {
	quit   chan struct{}
	done   chan struct{}
	linger time.Duration // set before quit closes; read by the loop after
	p      *poller       // set before ready
	// fault, when set, is the error the loop's sockets' next receive
	// returns (InjectFault).
	fault atomic.Pointer[error]
	// atExit closes what the loop's body made with socket and watch, in
	// reverse order, once the body has returned. Loop only.
	atExit []func()
}

// body runs a loop in its goroutine. It makes its sockets (adding them to
// h.p), calls ready once they are usable (or returns an error instead), and
// serves until quit is closed. Its sockets are closed by its own deferred
// calls.
type body func(h *handle, ready func()) error

// startLoop starts x's loop, running b as start does, and returns x with
// its handle set (*hp: the loop's owner reads it; the loop's goroutine
// does not), or the error.
func startLoop[X any](name string, onFail func(error), x *X, hp **handle, b body) (*X, error) {
	h, err := start(name, onFail, b)
	if err != nil {
		return nil, err
	}
	*hp = h
	return x, nil
}

// start runs b in a new goroutine and waits until it is ready. A failure
// after ready is reported to onFail.
func start(name string, onFail func(error), b body) (*handle, error) {
	p, err := newPoller()
	if err != nil {
		return nil, fmt.Errorf("sockets: %s loop: %w", name, err)
	}
	h := &handle{quit: make(chan struct{}), done: make(chan struct{}), p: p}
	ready := make(chan error, 1)
	// Runs in its own goroutine; owns every socket b makes.
	go func() {
		defer close(h.done)
		defer p.close() // after the deferred closes of b's sockets
		defer h.exit()
		isReady := false
		err := func() (err error) {
			defer func() {
				if r := recover(); r != nil {
					err = fmt.Errorf("sockets: %s loop panicked: %v", name, r)
				}
			}()
			return b(h, func() { isReady = true; ready <- nil })
		}()
		if !isReady {
			if err == nil {
				err = fmt.Errorf("sockets: %s loop ended before it was ready", name)
			}
			ready <- err
			return
		}
		if err != nil && onFail != nil {
			onFail(err)
		}
	}()
	if err := <-ready; err != nil {
		<-h.done
		return nil, err
	}
	return h, nil
}

// Stop ends the loop at once and waits until it has closed its sockets
// with linger 0 (a restart: what libzmq still held is lost). Only the owning
// actor calls it; it is idempotent.
func (h *handle) Stop() { h.StopLinger(0) }

// StopLinger ends the loop and closes its sockets with the given linger, so
// that libzmq may still deliver what it holds for that long (a graceful
// close). Only the owning actor calls it; it is idempotent.
func (h *handle) StopLinger(linger time.Duration) {
	select {
	case <-h.quit:
	default:
		h.linger = linger
		close(h.quit)
		if h.p != nil {
			h.p.kick()
		}
	}
	<-h.done
}

// exit runs atExit in reverse order. Runs in the loop's goroutine, after
// its body returned.
func (h *handle) exit() {
	for i := len(h.atExit) - 1; i >= 0; i-- {
		h.atExit[i]()
	}
	h.atExit = nil
}

// socket makes a socket of type t as newSocket does, watched by the
// loop's poller with tag and closed (with the loop's exit linger) when
// the loop's body returns. Runs in the loop's goroutine.
func (h *handle) socket(zctx *Context, t zmq.Type, o Options, tag int) (*batchSocket, error) {
	s, err := newSocket(zctx, h, t, o)
	if err != nil {
		return nil, err
	}
	h.atExit = append(h.atExit, func() { s.close(h) })
	if err := h.p.add(s.z, tag); err != nil {
		return nil, err
	}
	return s, nil
}

// closeSocket closes s with the loop's exit linger. Runs in the loop's
// goroutine, after quit.
func (h *handle) closeSocket(s *zmq.Socket) {
	if quitting(h.quit) && h.linger > 0 {
		_ = s.SetLinger(h.linger)
	}
	s.Close()
}

// InjectFault makes the loop fail with err as a socket error would: it is
// woken, its sockets' next receive returns err, and the loop ends and
// reports err through OnFail, so that its owner restarts it. For tests and
// chaos tools, to take the real failure path of a socket loop (a Dealers
// loop with no connection has no socket to fail until it makes one). Safe
// for concurrent use; a fault after the loop ended is ignored.
func (h *handle) InjectFault(err error) {
	h.fault.CompareAndSwap(nil, &err)
	if h.p != nil {
		h.p.kick()
	}
}

// Done is closed when the loop's goroutine has ended.
func (h *handle) Done() <-chan struct{} { return h.done }

// quitting reports whether quit is closed.
func quitting(quit <-chan struct{}) bool {
	select {
	case <-quit:
		return true
	default:
		return false
	}
}

// sleep parks the loop in its poller until a socket has an edge, a
// wake-up comes, quit closes, or timeout passes (0: none; a loop with
// messages held uses pollBacklog), and appends the fired sockets' tags to
// fired. w, when not nil, is the waker of the loop's queue: pending reports
// whether its queue has work, checked after the loop declared itself asleep
// so that no wake-up is missed.
func (h *handle) sleep(p *poller, w *waker, pending func() bool, timeout time.Duration, fired []int) []int {
	if w != nil {
		w.sleeping.Store(true)
		if pending != nil && pending() {
			w.sleeping.Store(false)
			return fired
		}
	}
	if quitting(h.quit) {
		return fired
	}
	fired = p.wait(timeout, fired)
	if h.fault.Load() != nil {
		fired = p.appendTags(fired) // so that the loop reads its sockets
	}
	if w != nil {
		w.sleeping.Store(false)
	}
	return fired
}

// turner is the work of one loop between two sleeps: the skeleton (serve)
// is the same for every loop, the turn is the loop's own.
type turner interface {
	// turn serves the sockets whose tags are in fired (edges since the last
	// turn; none after a timeout or a wake-up), the loop's queue and its
	// timers. It reports whether the loop may sleep now, and for how long
	// at most (0: until an edge or a wake-up). An error ends the loop.
	turn(fired []int) (sleep bool, timeout time.Duration, err error)
}

// serve runs t's turns until quit closes, sleeping between them when t
// says so. w and pending are the loop's queue's waker and its "has work"
// (nil for a loop without a queue; see sleep). Runs in the loop's
// goroutine.
func (h *handle) serve(t turner, w *waker, pending func() bool) error {
	var fired []int
	for !quitting(h.quit) {
		sleep, timeout, err := t.turn(fired)
		if err != nil {
			return err
		}
		fired = fired[:0]
		if sleep {
			fired = h.sleep(h.p, w, pending, timeout, fired)
		}
	}
	return nil
}

// backlogTimeout is sleep's timeout for a loop that holds messages or not.
func backlogTimeout(backlogged bool) time.Duration {
	if backlogged {
		return pollBacklog
	}
	return 0
}

func isAgain(err error) bool { return zmq.AsErrno(err) == zmq.Errno(syscall.EAGAIN) }

func isUnreachable(err error) bool {
	return zmq.AsErrno(err) == zmq.Errno(syscall.EHOSTUNREACH)
}

// newSocket makes a socket of type t from zctx with o and linger 0 set (a
// ROUTER also with ROUTER_MANDATORY, and with ROUTER_HANDOVER off: a
// second connection that presents the routing id of one already connected
// is refused, never handed the first one's traffic), and CURVE when o has
// it, wrapped for batched I/O. Runs in the loop's goroutine, which owns
// the socket.
func newSocket(zctx *Context, h *handle, t zmq.Type, o Options) (*batchSocket, error) {
	z, err := zctx.z.NewSocket(t)
	if err != nil {
		return nil, fmt.Errorf("new %v socket: %w", t, err)
	}
	fail := func(err error) (*batchSocket, error) {
		z.Close()
		return nil, err
	}
	if err := o.apply(z); err != nil {
		return fail(err)
	}
	if err := o.Curve.apply(z, t); err != nil {
		return fail(err)
	}
	if t == zmq.ROUTER {
		if err := z.SetRouterMandatory(1); err != nil {
			return fail(fmt.Errorf("set router_mandatory: %w", err))
		}
		if err := z.SetRouterHandover(false); err != nil {
			return fail(fmt.Errorf("set router_handover: %w", err))
		}
	}
	s, err := newBatchSocket(z)
	if err != nil {
		return fail(err)
	}
	s.limitTotal(o.MaxMsgSize)
	s.fault = &h.fault
	return s, nil
}

// close closes s with the loop's exit linger. Runs in the loop's
// goroutine, after quit (or on a failed start).
func (s *batchSocket) close(h *handle) {
	if quitting(h.quit) && h.linger > 0 {
		_ = s.z.SetLinger(h.linger)
	}
	s.close0()
}
