package relay

import (
	"context"
	"sync"
	"time"
)

// requestCtx is a handler's context: the node's base context with the
// request's deadline. Most handlers never wait on ctx, so the timer that
// context.WithDeadline would start for every request is made only when
// Done or Err is first asked for.
type requestCtx struct {
	parent   context.Context
	deadline time.Time

	once   sync.Once
	ctx    context.Context
	cancel context.CancelFunc
}

func newRequestCtx(parent context.Context, deadline time.Time) *requestCtx {
	return &requestCtx{parent: parent, deadline: deadline}
}

func (c *requestCtx) real() context.Context {
	c.once.Do(func() { c.ctx, c.cancel = context.WithDeadline(c.parent, c.deadline) })
	return c.ctx
}

func (c *requestCtx) Deadline() (time.Time, bool) { return c.deadline, true }
func (c *requestCtx) Done() <-chan struct{}       { return c.real().Done() }
func (c *requestCtx) Err() error                  { return c.real().Err() }
func (c *requestCtx) Value(key any) any           { return c.parent.Value(key) }

// release stops the timer, if one was made.
func (c *requestCtx) release() {
	c.once.Do(func() {
		// Nobody asked for Done before the handler returned: whoever asks
		// later (a goroutine the handler left behind) sees it ended.
		c.ctx, c.cancel = context.WithCancel(c.parent)
	})
	c.cancel()
}
