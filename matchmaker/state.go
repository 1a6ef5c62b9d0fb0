package matchmaker

import (
	"sync"
	"sync/atomic"
)

// closing is the closed state of a matchmaker: check reports ErrClosed
// once markClosed has run. Safe for concurrent use.
type closing struct{ closed atomic.Bool }

// check returns ErrClosed after markClosed, else nil.
func (c *closing) check() error {
	if c.closed.Load() {
		return ErrClosed
	}
	return nil
}

// markClosed marks it closed and reports whether it was open: false when
// Close had already run.
func (c *closing) markClosed() bool { return c.closed.CompareAndSwap(false, true) }

// changes is the channel Changed returns: closed, and replaced by a new
// one, at each change. Safe for concurrent use; the zero value is not
// ready, use newChanges.
type changes struct {
	mu sync.Mutex // guards ch
	ch chan struct{}
}

func newChanges() *changes { return &changes{ch: make(chan struct{})} }

// wait returns the channel that the next change closes.
func (c *changes) wait() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ch
}

// notify wakes every waiter of the current channel and starts a new one.
func (c *changes) notify() {
	c.mu.Lock()
	defer c.mu.Unlock()
	close(c.ch)
	c.ch = make(chan struct{})
}
