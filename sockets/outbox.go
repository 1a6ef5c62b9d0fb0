package sockets

import (
	"context"
	"sync"
	"sync/atomic"
)

// Message is one outbound message of a socket loop: one or more records
// (package envelope), which the loop may batch with others for the same
// peer into one ZeroMQ message.
type Message struct {
	To       []byte // Router: the routing id of the peer
	Rec      []byte // the records
	Deadline int64  // Unix ns; unsent at this time means dropped with ErrExpired. 0: none
	Ref      any    // opaque to the loop, handed back to OnDrop
	// Pooled says Rec is the sender's to give back (DealersConfig.Release
	// gets Ref) once the loop has copied it into a batch.
	Pooled bool
}

// waker wakes the loop that drains a queue when it sleeps: the first push
// after the loop declared itself asleep kicks its poller; every other push
// (the loop is awake, or a kick is on its way) costs one atomic load, so
// under load most pushes do not signal at all. It outlives loops: each loop
// attaches its poller while it runs.
type waker struct {
	sleeping atomic.Bool // the loop sleeps, or is about to: the next push kicks it

	// mu guards p.
	mu sync.Mutex
	p  *poller
}

func newWaker() waker { return waker{} }

// wake tells the loop there is work, if it sleeps.
func (w *waker) wake() {
	if w.sleeping.Load() && w.sleeping.CompareAndSwap(true, false) {
		w.mu.Lock()
		if w.p != nil {
			w.p.kick()
		}
		w.mu.Unlock()
	}
}

// attach makes wake-ups go to p (nil: to nobody). Loop only.
func (w *waker) attach(p *poller) {
	w.mu.Lock()
	w.p = p
	w.mu.Unlock()
}

// room is a broadcast "there is room again" for pushers waiting on a full
// queue: wait on ch, closed and replaced by the next notify.
type room struct {
	ch      chan struct{} // guarded by the owner's lock
	waiters bool          // someone waits on ch; guarded by the owner's lock
}

// wait returns the channel to wait on; call with the owner's lock held.
func (r *room) wait() <-chan struct{} {
	if r.ch == nil {
		r.ch = make(chan struct{})
	}
	r.waiters = true
	return r.ch
}

// await unlocks mu, the owner's lock, and waits for the next notify, or
// until ctx is done.
func (r *room) await(ctx context.Context, mu *sync.Mutex) error {
	ch := r.wait()
	mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// notify wakes every waiter; call with the owner's lock held.
func (r *room) notify() {
	if r.waiters {
		close(r.ch)
		r.ch, r.waiters = nil, false
	}
}

// Outbox is the bounded queue that feeds one socket loop from any number
// of goroutines. It grows on demand up to its bound. It outlives the loops
// that drain it, so a restarted loop picks up what its predecessor left.
type Outbox struct {
	waker
	max int

	// mu guards the fields below.
	mu   sync.Mutex
	q    []Message
	room room

	taken atomic.Int64 // messages taken by the loop and not yet settled
}

// NewOutbox makes an outbox holding at most capacity messages.
func NewOutbox(capacity int) *Outbox {
	return &Outbox{waker: newWaker(), max: max(capacity, 1)}
}

// TryPush queues m without waiting; it returns ErrOutboxFull when the
// queue is full.
func (o *Outbox) TryPush(m Message) error {
	o.mu.Lock()
	if len(o.q) >= o.max {
		o.mu.Unlock()
		return ErrOutboxFull
	}
	o.q = append(o.q, m)
	o.mu.Unlock()
	o.wake()
	return nil
}

// Push queues m, waiting for room until ctx is done.
func (o *Outbox) Push(ctx context.Context, m Message) error {
	for {
		o.mu.Lock()
		if len(o.q) < o.max {
			o.q = append(o.q, m)
			o.mu.Unlock()
			o.wake()
			return nil
		}
		if err := o.room.await(ctx, &o.mu); err != nil {
			return err
		}
	}
}

// Len returns the number of queued messages.
func (o *Outbox) Len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.q)
}

// Unsent returns the messages queued, or taken by the loop and not yet
// sent, dropped or held (as of its last turn).
func (o *Outbox) Unsent() int { return o.Len() + int(o.taken.Load()) }

// take moves every queued message to dst (the loop's), and returns it.
func (o *Outbox) take(dst []Message) []Message {
	o.mu.Lock()
	if len(o.q) == 0 {
		o.mu.Unlock()
		return dst
	}
	o.taken.Add(int64(len(o.q)))
	dst = takeQueue(dst, &o.q, 4096)
	o.room.notify()
	o.mu.Unlock()
	return dst
}

// settle ends a loop turn: what was taken is now sent, dropped or held.
func (o *Outbox) settle() { o.taken.Store(0) }

// Drain removes every queued message and hands it to f. It is for shutdown,
// when no loop runs any more.
func (o *Outbox) Drain(f func(Message)) {
	for _, m := range o.take(nil) {
		f(m)
	}
	o.settle()
}

// requeue puts messages a stopping loop could not send back at the front.
func (o *Outbox) requeue(ms []Message) {
	if len(ms) == 0 {
		return
	}
	o.mu.Lock()
	o.q = prepend(ms, o.q)
	o.mu.Unlock()
}

// takeQueue moves the messages of *q to dst, in order, and empties *q,
// giving back its memory when a burst grew it past keep messages. The
// caller holds the queue's lock.
func takeQueue(dst []Message, q *[]Message, keep int) []Message {
	dst = append(dst, *q...)
	clear(*q)
	if cap(*q) > keep {
		*q = nil
	} else {
		*q = (*q)[:0]
	}
	return dst
}

// prepend returns ms followed by q, in new memory. The caller holds the
// queue's lock.
func prepend(ms, q []Message) []Message {
	return append(append(make([]Message, 0, len(ms)+len(q)), ms...), q...)
}
