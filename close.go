package relay

import (
	"errors"
	"fmt"
	"time"

	"github.com/relay-dev/relay/sockets"
)

// fail marks the node failed; it reports whether this was the first failure.
func (n *Node) fail(err error) bool {
	first := n.failure.CompareAndSwap(nil, &err)
	if first {
		n.log.Error("node failed: an actor exceeded its restart intensity", "err", err)
		n.markDown()
	}
	return first
}

func (n *Node) markDown() { n.downOnce.Do(func() { close(n.down) }) }

// downErr is the error for calls on a node that is down.
func (n *Node) downErr() error {
	if p := n.failure.Load(); p != nil {
		return *p
	}
	return ErrClosed
}

func (n *Node) lastFailure() string {
	ev := n.monitor.Events()
	if len(ev) == 0 {
		return "none recorded"
	}
	last := ev[len(ev)-1]
	return last.Actor + ": " + last.Reason
}

// Close unregisters the node's servers, stops taking new calls, waits for
// handlers in flight (up to the drain timeout, then cancels them), fails
// calls still waiting with ErrClosed, stops the actors and closes every
// socket. It is idempotent and blocks until done.
func (n *Node) Close() error {
	n.closeOnce.Do(func() { n.closeErr = n.close() })
	return n.closeErr
}

func (n *Node) close() error {
	n.markDown()
	if n.opts.inproc {
		locals.Delete(n.endpoint)
	}
	errs := n.stopServing()
	n.drain()
	errs = append(errs, n.stopActors())
	n.monitor.Close()
	n.releaseSystem()
	n.sec.Stop(n.zctx)
	// errors.Join leaves out the nil ones.
	errs = append(errs, n.zctx.Close(5*time.Second), n.ledger.Close(), n.mm.Close())
	n.log.Info("node closed")
	return errors.Join(errs...)
}

// stopServing stops (and unregisters) the node's servers and listeners,
// returning their errors.
func (n *Node) stopServing() []error {
	servers, listeners := n.registered()
	var errs []error
	keep := func(err error) {
		if err != nil && !errors.Is(err, ErrClosed) {
			errs = append(errs, err)
		}
	}
	for _, s := range servers {
		keep(s.Stop())
	}
	for _, l := range listeners {
		keep(l.Stop())
	}
	return errs
}

// drain lets the handlers in flight finish, up to the drain timeout,
// then cancels them; their replies still go out. Then it lets the socket
// loops send what is queued (casts, replies), and gives libzmq what is
// left of the drain time to put it on the wire.
func (n *Node) drain() {
	drainEnd := time.Now().Add(n.opts.drainTimeout)
	n.group.Close()
	n.pool.Close()
	select {
	case <-n.group.WaitChan():
	case <-time.After(n.opts.drainTimeout):
		n.log.Warn("handlers still running after drain timeout; cancelling them", "timeout", n.opts.drainTimeout)
	}
	n.cancel()
	n.group.Wait()
	n.drainOutboxes(drainEnd)
}

// stopActors stops the node's actors, then drops what is still queued:
// messages for servers (reported, see dropMessage) and replies (counted).
func (n *Node) stopActors() error {
	var err error
	if n.tree != nil {
		if serr := n.system.Root.StopFuture(n.tree).Wait(); serr != nil {
			err = fmt.Errorf("relay: close: stop actors: %w", serr)
		}
	}
	n.peers.Drain(func(addr string, m sockets.Message) { n.dropMessage(addr, &m, ErrClosed) })
	if dropped := n.replies.Len(); dropped > 0 {
		n.counters.DroppedReplies.Add(uint64(dropped))
		n.replies.Drain(func(sockets.Message) {})
	}
	if s := n.counters.Snapshot(); s.DroppedCasts > 0 || s.DroppedReplies > 0 {
		n.log.Warn("messages dropped", "casts", s.DroppedCasts, "replies", s.DroppedReplies)
	}
	return err
}

// drainOutboxes waits until the socket loops have taken every queued
// message, or until end, and sets how long the sockets linger at close.
func (n *Node) drainOutboxes(end time.Time) {
	const step = time.Millisecond
	for (n.peers.Unsent() > 0 || n.replies.Unsent() > 0) && time.Now().Before(end) {
		select {
		case <-time.After(step):
		case <-n.failedCh():
			return
		}
	}
	if rest := time.Until(end); rest > 0 {
		n.linger.Set(min(rest, time.Second))
	}
}

// failedCh is closed when the node failed (an actor stopped for good): its
// loops may no longer drain anything.
func (n *Node) failedCh() <-chan struct{} {
	if n.failure.Load() != nil {
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	return nil
}
