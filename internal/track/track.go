// Package track starts goroutines that have an owner: every goroutine is
// started through a Group, the Group refuses new ones after Close, and Wait
// joins them all.
//
// Concurrency: all methods are safe for concurrent use.
package track

import (
	"errors"
	"sync"
)

// ErrClosed is returned by Go after Close.
var ErrClosed = errors.New("track: group closed")

// Group tracks goroutines. The zero value is ready to use.
type Group struct {
	// mu guards closed and the Add half of wg, so that no Add races Wait.
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

// Go runs f in a new goroutine unless the group is closed.
func (g *Group) Go(f func()) error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return ErrClosed
	}
	g.wg.Add(1)
	g.mu.Unlock()
	go func() {
		defer g.wg.Done()
		f()
	}()
	return nil
}

// Close refuses further goroutines. It does not wait; call Wait for that.
func (g *Group) Close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

// Wait blocks until every goroutine started by Go has returned.
func (g *Group) Wait() { g.wg.Wait() }

// WaitChan returns a channel closed when Wait would return. It starts one
// untracked helper goroutine that ends when the group's goroutines do.
func (g *Group) WaitChan() <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		g.wg.Wait()
		close(ch)
	}()
	return ch
}
