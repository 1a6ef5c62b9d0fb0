package actors

import (
	"sync/atomic"
	"time"

	"github.com/relay-dev/relay/envelope"
)

// Result is the one outcome of a call: a REPLY or ERROR message, or a local
// error.
type Result struct {
	Kind envelope.Kind // KindReply or KindError when Err is nil
	Body []byte
	Err  error
}

// Call is a call waiting for its outcome. Exactly one Result is delivered,
// by whichever of reply, timeout, cancel or failure comes first.
type Call struct {
	ID       envelope.MsgID
	Deadline time.Time

	done     chan Result
	finished atomic.Bool
}

// NewCall makes a call with the given id and deadline.
func NewCall(id envelope.MsgID, deadline time.Time) *Call {
	return &Call{ID: id, Deadline: deadline, done: make(chan Result, 1)}
}

// Finish delivers r unless an outcome was delivered already; it reports
// whether r was the one.
func (c *Call) Finish(r Result) bool {
	if !c.finished.CompareAndSwap(false, true) {
		return false
	}
	c.done <- r
	return true
}

// Finished reports whether the call has its outcome.
func (c *Call) Finished() bool { return c.finished.Load() }

// Done delivers the outcome.
func (c *Call) Done() <-chan Result { return c.done }

// live is the sender's filter: casts (nil) and unfinished calls are sent.
func live(ref any) bool {
	c, ok := ref.(*Call)
	return !ok || !c.Finished()
}
