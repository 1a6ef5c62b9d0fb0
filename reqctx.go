package relay

import (
	"context"
	"sync"
	"time"
)

// requestCtx is a handler's context: the node's base context with the
// request's deadline (none when zero), ended when the handler returns or
// when its caller cancels the call. Most handlers never
// wait on ctx, so it makes its channel and its timer only when Done is
// first asked for: a request costs one small allocation, not the three
// of context.WithDeadline.
type requestCtx struct {
	parent   context.Context
	deadline time.Time
	caller   []byte // a call's reply_to: who may cancel it

	// mu guards the fields below.
	mu       sync.Mutex
	done     chan struct{} // made by the first Done
	err      error         // why it ended, once it did
	timer    *time.Timer   // closes done at the deadline
	stopBase func() bool   // stops watching the parent
	byCaller bool          // ended by its caller's CANCEL
}

func newRequestCtx(parent context.Context, deadline time.Time) *requestCtx {
	return &requestCtx{parent: parent, deadline: deadline}
}

func (c *requestCtx) Deadline() (time.Time, bool) { return c.deadline, !c.deadline.IsZero() }
func (c *requestCtx) Value(key any) any           { return c.parent.Value(key) }

// Done returns a channel closed at the deadline, when the node's base
// context ends, or when the handler has returned.
func (c *requestCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done != nil {
		return c.done
	}
	c.done = make(chan struct{})
	if c.err == nil {
		c.err = c.expired()
	}
	if c.err != nil {
		close(c.done)
		return c.done
	}
	if !c.deadline.IsZero() {
		c.timer = time.AfterFunc(time.Until(c.deadline), func() { c.end(context.DeadlineExceeded) })
	}
	c.stopBase = context.AfterFunc(c.parent, func() { c.end(context.Cause(c.parent)) })
	return c.done
}

// Err returns nil while the request runs, then why its context ended.
func (c *requestCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = c.expired()
	}
	return c.err
}

// expired reports why the context has ended by now without anyone ending
// it: its deadline passed, or its parent ended. mu must be held.
func (c *requestCtx) expired() error {
	if err := c.parent.Err(); err != nil {
		return err
	}
	if !c.deadline.IsZero() && !time.Now().Before(c.deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

// end ends the context with err, unless it ended already.
func (c *requestCtx) end(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = err
	}
	if c.done != nil {
		select {
		case <-c.done:
		default:
			close(c.done)
		}
	}
}

// release ends the context (the handler returned) and stops its timer.
func (c *requestCtx) release() {
	c.end(context.Canceled)
	c.mu.Lock()
	t, stop := c.timer, c.stopBase
	c.mu.Unlock()
	if t != nil {
		t.Stop()
	}
	if stop != nil {
		stop()
	}
}

// cancel ends the context because its caller cancelled the call.
func (c *requestCtx) cancel() {
	c.mu.Lock()
	if c.err == nil {
		c.byCaller = true
	}
	c.mu.Unlock()
	c.end(context.Canceled)
}

// cancelled reports whether the caller cancelled the call.
func (c *requestCtx) cancelled() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byCaller
}
