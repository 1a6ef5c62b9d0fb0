package sockets

import (
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	zmq "github.com/pebbe/zmq4"
)

// pollBacklog is how often a loop with unsent messages looks at them again
// even when nothing else happens (to expire them).
const pollBacklog = 5 * time.Millisecond

// handle is what every loop shares: its goroutine and the quit signal.
type handle struct {
	quit   chan struct{}
	done   chan struct{}
	linger time.Duration // set before quit closes; read by the loop after
}

// body runs a loop in its goroutine. It makes its sockets, calls ready once
// they are usable (or returns an error instead), and serves until quit is
// closed. Its sockets are closed by its own deferred calls.
type body func(h *handle, ready func()) error

// start runs b in a new goroutine and waits until it is ready. A failure
// after ready is reported to onFail.
func start(name string, onFail func(error), b body) (*handle, error) {
	h := &handle{quit: make(chan struct{}), done: make(chan struct{})}
	ready := make(chan error, 1)
	// Runs in its own goroutine; owns every socket b makes.
	go func() {
		defer close(h.done)
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
	}
	<-h.done
}

// closeSocket closes s with the loop's exit linger. Runs in the loop's
// goroutine, after quit.
func (h *handle) closeSocket(s *zmq.Socket) {
	if quitting(h.quit) && h.linger > 0 {
		_ = s.SetLinger(h.linger)
	}
	s.Close()
}

// Done is closed when the loop's goroutine has ended.
func (h *handle) Done() <-chan struct{} { return h.done }

// fdWatch turns a ZeroMQ socket's ZMQ_FD into wake-ups on a channel.
//
// libzmq signals ZMQ_FD (edge-triggered) whenever the socket's events may
// have changed (an edge comes whenever a command reaches the socket after
// the socket has processed all earlier ones). Waiting for it in Go's netpoller, instead of blocking in
// zmq_poll inside cgo, keeps the loop's goroutine off an OS thread while it
// waits, and lets it wait for Go channels (the outbox) at the same time:
// the loop never needs a control socket written by other goroutines.
//
// The watcher goroutine touches no ZeroMQ socket: it waits on a duplicate of
// the descriptor. After an edge the loop serves the socket until a
// non-blocking receive says EAGAIN (which leaves libzmq's pipes asleep, so
// the next message brings a new edge) before it waits again. An edge can
// also be eaten: epoll re-checks the descriptor when it delivers, and a send
// on the socket may have processed libzmq's commands (and reset the
// descriptor) in between. So the loop also reads until EAGAIN after every
// send. A send that would block is retried at the next edge or backlog tick.
type fdWatch struct {
	f     *os.File
	done  chan struct{}
	ready chan struct{} // signalled at each edge
	// edge is set at each edge of ZMQ_FD, before ready is signalled; the
	// loop clears it (Swap) and then serves the socket until EAGAIN.
	edge atomic.Bool
}

// signalled reports (and clears) whether ZMQ_FD had an edge since the last
// call.
func (w *fdWatch) signalled() bool { return w.edge.Swap(false) }

// watch starts watching s; each edge of its ZMQ_FD does a non-blocking send
// on ready. Runs in the loop's goroutine (it reads a socket option).
func watch(s *zmq.Socket, ready chan struct{}) (*fdWatch, error) { return watchEdge(s, ready, nil) }

// watchEdge is watch that also calls onEdge (in the watcher's goroutine)
// at each edge, before signalling ready.
func watchEdge(s *zmq.Socket, ready chan struct{}, onEdge func()) (*fdWatch, error) {
	fd, err := s.GetFd()
	if err != nil {
		return nil, fmt.Errorf("get zmq fd: %w", err)
	}
	dup, err := syscall.Dup(fd)
	if err != nil {
		return nil, fmt.Errorf("dup zmq fd: %w", err)
	}
	syscall.CloseOnExec(dup)
	if err := syscall.SetNonblock(dup, true); err != nil {
		syscall.Close(dup)
		return nil, fmt.Errorf("zmq fd non-blocking: %w", err)
	}
	f := os.NewFile(uintptr(dup), "zmq-fd")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("zmq fd raw conn: %w", err)
	}
	w := &fdWatch{f: f, done: make(chan struct{}), ready: ready}
	// Runs in its own goroutine until close. One Read for its whole life:
	// the callback signals and asks to wait again, so no edge is lost
	// between two waits.
	go func() {
		defer close(w.done)
		_ = rc.Read(func(uintptr) bool {
			w.edge.Store(true)
			if onEdge != nil {
				onEdge()
			}
			select {
			case ready <- struct{}{}:
			default:
			}
			return false
		})
	}()
	return w, nil
}

// close stops the watcher and waits for it. Call before closing the socket.
func (w *fdWatch) close() {
	w.f.Close()
	<-w.done
}

// quitting reports whether quit is closed.
func quitting(quit <-chan struct{}) bool {
	select {
	case <-quit:
		return true
	default:
		return false
	}
}

// wait blocks until a socket may have events, the outbox has messages, quit
// is closed, or (when backlogged) pollBacklog passes. It reports whether it
// woke for a socket or the backlog tick: the time to retry held sends.
func wait(ready <-chan struct{}, out wakeable, quit <-chan struct{}, timer *time.Timer, backlogged bool) bool {
	var tc <-chan time.Time
	if backlogged {
		timer.Reset(pollBacklog)
		tc = timer.C
	}
	retry := false
	select {
	case <-ready:
		retry = true
	case <-out.wakeup():
	case <-quit:
	case <-tc:
		retry = true
	}
	if backlogged {
		timer.Stop() // Go 1.23 timers: no stale tick survives Stop
	}
	return retry
}

func isAgain(err error) bool { return zmq.AsErrno(err) == zmq.Errno(syscall.EAGAIN) }

func isUnreachable(err error) bool {
	return zmq.AsErrno(err) == zmq.Errno(syscall.EHOSTUNREACH)
}

// wakeable is what a loop waits on for work from other goroutines.
type wakeable interface{ wakeup() <-chan struct{} }

func (w *waker) wakeup() <-chan struct{} { return w.signal }

// never is a wakeable that never wakes: for loops with no outbox.
type never struct{}

func (never) wakeup() <-chan struct{} { return nil }

// newSocket makes a socket of type t from zctx with o and linger 0 set (a
// ROUTER also with ROUTER_MANDATORY and ROUTER_HANDOVER), wrapped for
// batched I/O. Runs in the loop's goroutine, which owns the socket.
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
	if t == zmq.ROUTER {
		if err := z.SetRouterMandatory(1); err != nil {
			return fail(fmt.Errorf("set router_mandatory: %w", err))
		}
		if err := z.SetRouterHandover(true); err != nil {
			return fail(fmt.Errorf("set router_handover: %w", err))
		}
	}
	s, err := newBatchSocket(z)
	if err != nil {
		return fail(err)
	}
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
