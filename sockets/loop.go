package sockets

import (
	"errors"
	"fmt"
	"syscall"
	"time"

	zmq "github.com/pebbe/zmq4"
)

// pollBacklog is how often a loop with unsent messages looks at them again
// even when no socket event arrives (to expire them). At least 1 ms: shorter
// poll timeouts busy-spin in libzmq.
const pollBacklog = 5 * time.Millisecond

// recvBatch bounds how many messages a loop reads from one socket per poll,
// so that one busy peer cannot starve the control socket.
const recvBatch = 256

// Waker is the writing end of a loop's control pair. It is owned by the
// loop's actor: only the actor calls Wake and, through Stop, closes it.
type Waker struct {
	s *zmq.Socket
}

var wakeByte = []byte{1}

// Wake makes the loop drain its outbox. It never blocks: when the control
// pipe is full the loop has wake-ups pending anyway.
func (w *Waker) Wake() {
	if w != nil && w.s != nil {
		_, _ = w.s.SendBytes(wakeByte, zmq.DONTWAIT)
	}
}

// handle is what every loop shares: its goroutine, the quit signal and the
// actor's end of the control pair.
type handle struct {
	quit  chan struct{}
	done  chan struct{}
	waker *Waker
}

// body runs a loop in its goroutine. It makes its sockets, calls ready once
// they are usable (or returns an error instead), and serves until quit is
// closed. Its sockets are closed by its own deferred calls.
type body func(ctrl *zmq.Socket, quit <-chan struct{}, ready func()) error

// start runs b in a new goroutine with a fresh control pair and waits until
// it is ready. A failure after ready is reported to onFail.
func start(zctx *Context, name string, onFail func(error), b body) (*handle, error) {
	h := &handle{quit: make(chan struct{}), done: make(chan struct{})}
	ctrlEP := zctx.inprocName(name)
	ready := make(chan error, 1)
	// Runs in its own goroutine; owns ctrl and every socket b makes.
	go func() {
		defer close(h.done)
		isReady := false
		err := func() (err error) {
			defer func() {
				if r := recover(); r != nil {
					err = fmt.Errorf("sockets: %s loop panicked: %v", name, r)
				}
			}()
			ctrl, err := zctx.z.NewSocket(zmq.PAIR)
			if err != nil {
				return fmt.Errorf("sockets: %s: new control socket: %w", name, err)
			}
			defer ctrl.Close()
			if err := ctrl.SetLinger(0); err != nil {
				return fmt.Errorf("sockets: %s: control linger: %w", name, err)
			}
			if err := ctrl.Bind(ctrlEP); err != nil {
				return fmt.Errorf("sockets: %s: bind %s: %w", name, ctrlEP, err)
			}
			return b(ctrl, h.quit, func() { isReady = true; ready <- nil })
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
	w, err := zctx.z.NewSocket(zmq.PAIR)
	if err == nil {
		if err = w.SetLinger(0); err == nil {
			err = w.Connect(ctrlEP)
		}
		if err != nil {
			w.Close()
		}
	}
	if err != nil {
		close(h.quit)
		<-h.done
		return nil, fmt.Errorf("sockets: %s: control writer: %w", name, err)
	}
	h.waker = &Waker{s: w}
	return h, nil
}

// Wake makes the loop look at its outbox. Only the owning actor calls it.
func (h *handle) Wake() { h.waker.Wake() }

// Stop ends the loop, waits for it to close its sockets, and closes the
// actor's end of the control pair. Only the owning actor calls it; it is
// idempotent.
func (h *handle) Stop() {
	select {
	case <-h.quit:
	default:
		close(h.quit)
		h.waker.Wake()
	}
	<-h.done
	if h.waker.s != nil {
		h.waker.s.Close()
		h.waker.s = nil
	}
}

// Done is closed when the loop's goroutine has ended.
func (h *handle) Done() <-chan struct{} { return h.done }

// drainCtrl reads every pending wake-up byte.
func drainCtrl(ctrl *zmq.Socket) error {
	for {
		_, err := ctrl.RecvBytes(zmq.DONTWAIT)
		if err != nil {
			if isAgain(err) {
				return nil
			}
			return fmt.Errorf("control socket: %w", err)
		}
	}
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

func isAgain(err error) bool { return zmq.AsErrno(err) == zmq.Errno(syscall.EAGAIN) }

func isUnreachable(err error) bool {
	return zmq.AsErrno(err) == zmq.Errno(syscall.EHOSTUNREACH)
}

// send writes the frames of one message without blocking.
func send(s *zmq.Socket, frames ...[]byte) error {
	last := len(frames) - 1
	for i, f := range frames {
		flags := zmq.DONTWAIT
		if i < last {
			flags |= zmq.SNDMORE
		}
		if _, err := s.SendBytes(f, flags); err != nil {
			return err
		}
	}
	return nil
}

// backlog holds messages a loop could not send yet, oldest first.
type backlog struct {
	msgs []Message
	max  int
}

// add appends m, or reports ErrBackPressure when the backlog is full.
func (b *backlog) add(m Message) error {
	if len(b.msgs) >= b.max {
		return ErrBackPressure
	}
	b.msgs = append(b.msgs, m)
	return nil
}

// flush sends from the front until a send would block. Messages that fail
// for good go to drop.
func (b *backlog) flush(try func(*Message) (retry bool, err error), drop func(*Message, error)) {
	i := 0
	for ; i < len(b.msgs); i++ {
		retry, err := try(&b.msgs[i])
		if retry {
			break
		}
		if err != nil {
			drop(&b.msgs[i], err)
		}
	}
	b.shift(i)
}

// expire drops messages whose deadline has passed.
func (b *backlog) expire(now int64, reason error, drop func(*Message, error)) {
	kept := b.msgs[:0]
	for _, m := range b.msgs {
		if m.Deadline != 0 && m.Deadline < now {
			mm := m
			drop(&mm, reason)
			continue
		}
		kept = append(kept, m)
	}
	clear(b.msgs[len(kept):])
	b.msgs = kept
}

func (b *backlog) shift(n int) {
	if n == 0 {
		return
	}
	rest := copy(b.msgs, b.msgs[n:])
	clear(b.msgs[rest:])
	b.msgs = b.msgs[:rest]
}

// requeue hands every held message back to out, or to drop when out is full.
func (b *backlog) requeue(out *Outbox, drop func(*Message, error)) {
	for i := range b.msgs {
		if !out.requeue(b.msgs[i]) {
			drop(&b.msgs[i], ErrStopped)
		}
	}
	b.shift(len(b.msgs))
}

var errLoopStopped = errors.New("sockets: loop stopped")
