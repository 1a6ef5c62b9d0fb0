package relay

import (
	"context"
	"sync"
	"time"
)

// requestCtx is a handler's context: the node's base context with the
// request's deadline, ended when the handler returns. Most handlers never
// wait on ctx, so it makes its channel and its timer only when Done is
// first asked for: a request costs one small allocation, not the three
// of context.WithDeadline.
type requestCtx struct {
	parent   context.Context
	deadline time.Time

	// mu guards the fields below.
	mu       sync.Mutex
	done     chan struct{} // made by the first Done
	err      error         // why it ended, once it did
	timer    *time.Timer   // closes done at the deadline
	stopBase func() bool   // stops watching the parent
}

func newRequestCtx(parent context.Context, deadline time.Time) *requestCtx {
	return &requestCtx{parent: parent, deadline: deadline}
}

func (c *requestCtx) Deadline() (time.Time, bool) { return c.deadline, true }
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
	c.timer = time.AfterFunc(time.Until(c.deadline), func() { c.end(context.DeadlineExceeded) })
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
	if !time.Now().Before(c.deadline) {
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
