package actors

import (
	"math"
	"sync/atomic"
	"time"

	"github.com/relay-dev/relay/envelope"
	"github.com/relay-dev/relay/sockets"
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
	resend   *Resend // nil: sent once; guarded by the Pending table's lock once added
}

// Retry says when an unacknowledged message is sent again: after Base,
// then Base×Multiplier, … at most Attempts times, never past its deadline.
type Retry struct {
	Base       time.Duration
	Multiplier float64
	Attempts   int
}

// After returns the wait before resend number attempt+1.
func (r Retry) After(attempt int) time.Duration {
	return time.Duration(float64(r.Base) * math.Pow(r.Multiplier, float64(attempt)))
}

// Resend is what the reply-waiter needs to send a message again.
type Resend struct {
	Msg     sockets.Message // as first sent; Ref is the call
	Addrs   []string        // where to send it, in turn
	Cast    bool            // done at its ACK (a call is done at its reply)
	attempt int
	next    time.Time
}

// Resent reports whether c is resent until acknowledged or answered.
func (c *Call) Resent() bool { return c.resend != nil }

// WithResend makes c a message that is resent until acknowledged (a cast)
// or answered (a call). Call before the call is added to the table.
func (c *Call) WithResend(r *Resend, first time.Duration) *Call {
	r.next = time.Now().Add(first)
	c.resend = r
	return c
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
