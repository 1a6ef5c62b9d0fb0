package sockets

import (
	"context"
	"sync/atomic"
)

// Message is one outbound message of a socket loop.
type Message struct {
	Addr     string // Dealers: the endpoint to send to, e.g. "tcp://127.0.0.1:7001"
	To       []byte // Router: the routing id of the peer
	Header   []byte
	Body     []byte
	Deadline int64 // Unix ns; unsent at this time means dropped with ErrExpired. 0: none
	Ref      any   // opaque to the loop, handed back to callbacks
}

// Outbox is the bounded queue that feeds one socket loop. It outlives the
// loops that drain it, so a restarted loop picks up what its predecessor
// left.
type Outbox struct {
	ch     chan Message
	armed  atomic.Bool
	signal chan struct{} // wakes the loop; capacity 1
	held   atomic.Int64  // messages the loop holds unsent, as of its last turn
	taken  atomic.Int64  // messages taken in the loop's current turn (counted before they leave ch)
}

// NewOutbox makes an outbox holding at most capacity messages.
func NewOutbox(capacity int) *Outbox {
	return &Outbox{ch: make(chan Message, capacity), signal: make(chan struct{}, 1)}
}

// wake tells the loop there is work, unless a wake-up is pending already.
func (o *Outbox) wake() {
	if o.armed.CompareAndSwap(false, true) {
		select {
		case o.signal <- struct{}{}:
		default:
		}
	}
}

// TryPush queues m without waiting; it returns ErrOutboxFull when the queue
// is full.
func (o *Outbox) TryPush(m Message) error {
	select {
	case o.ch <- m:
		o.wake()
		return nil
	default:
		return ErrOutboxFull
	}
}

// Push queues m, waiting for room until ctx is done.
func (o *Outbox) Push(ctx context.Context, m Message) error {
	select {
	case o.ch <- m:
		o.wake()
		return nil
	default:
	}
	select {
	case o.ch <- m:
		o.wake()
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Len returns the number of queued messages.
func (o *Outbox) Len() int { return len(o.ch) }

// Unsent returns the messages queued or held by the loop (waiting for a
// peer to connect or to take more), as of the loop's last turn.
func (o *Outbox) Unsent() int {
	return len(o.ch) + int(o.taken.Load()) + int(o.held.Load())
}

// settle ends a loop turn: held messages remain unsent, and what was taken
// in the turn is now either sent, dropped or among them. Never counts a
// message as sent before it is.
func (o *Outbox) settle(held int) {
	o.held.Store(int64(held))
	o.taken.Store(0)
}

// Drain removes every queued message and hands it to f. It is for shutdown,
// when no loop runs any more.
func (o *Outbox) Drain(f func(Message)) {
	for {
		select {
		case m := <-o.ch:
			f(m)
		default:
			return
		}
	}
}

// rearm is called by the loop before it drains the queue: a Push after this
// point signals again.
func (o *Outbox) rearm() { o.armed.Store(false) }

// next returns a queued message without waiting.
func (o *Outbox) next() (Message, bool) {
	o.taken.Add(1) // before the receive, so Unsent never misses m
	select {
	case m := <-o.ch:
		return m, true
	default:
		o.taken.Add(-1)
		return Message{}, false
	}
}

// requeue puts back a message a stopping loop could not send.
func (o *Outbox) requeue(m Message) bool {
	select {
	case o.ch <- m:
		return true
	default:
		return false
	}
}
