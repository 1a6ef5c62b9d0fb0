package actors

import (
	"log/slog"

	"github.com/relay-dev/relay/sockets"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/relay-dev/relay/envelope"
)

// ExpiryInterval is how often the reply-waiter looks for calls past their
// deadline: a call whose ctx has no deadline times out at most this late.
// (A ctx deadline ends the call on time through ctx itself.)
const ExpiryInterval = 5 * time.Millisecond

// idleTicks is how many empty scans the reply-waiter does before it stops
// ticking until the next call.
const idleTicks = 200

// Pending is the reply-waiter's table of calls waiting for a reply, by
// msg_id. The node creates it, so it outlives reply-waiter restarts.
//
// The table is shared on purpose: a caller adds its call before sending,
// and the sender's loop completes a call by taking it from the table when
// its reply arrives, with no actor hop on the reply path. The reply-waiter
// actor expires calls at their deadline and fails them all when it stops.
// All methods are safe for concurrent use.
type Pending struct {
	// mu guards byID.
	mu   sync.Mutex
	byID map[envelope.MsgID]*Call

	ticking atomic.Bool // the reply-waiter's expiry timer runs
	kick    func()      // starts it; set by the reply-waiter
	kickMu  sync.Mutex
}

// NewPending makes an empty table.
func NewPending() *Pending { return &Pending{byID: make(map[envelope.MsgID]*Call)} }

// Add registers c; its reply is correlated by c.ID.
func (p *Pending) Add(c *Call) {
	p.mu.Lock()
	p.byID[c.ID] = c
	p.mu.Unlock()
	if !p.ticking.Load() && p.ticking.CompareAndSwap(false, true) {
		p.kickMu.Lock()
		kick := p.kick
		p.kickMu.Unlock()
		if kick != nil {
			kick()
		}
	}
}

// Take removes and returns the call with id, or nil.
func (p *Pending) Take(id envelope.MsgID) *Call {
	p.mu.Lock()
	c := p.byID[id]
	if c != nil {
		delete(p.byID, id)
	}
	p.mu.Unlock()
	return c
}

// Len returns the number of pending calls.
func (p *Pending) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.byID)
}

// Complete delivers a REPLY or ERROR to its call. It runs in the sender's
// loop; a reply nobody waits for is counted as late.
func (p *Pending) Complete(h *envelope.Header, body []byte, counters *Counters) {
	if h.Kind == envelope.KindError && p.rerouted(h, body) {
		return
	}
	c := p.Take(h.ID)
	if c == nil || !c.Finish(Result{Kind: h.Kind, Body: body}) {
		counters.LateReplies.Add(1)
	}
}

// Ack records the ACK of message id: a cast (or a message nobody resends,
// such as a publish) is done; a call keeps waiting for its reply.
func (p *Pending) Ack(id envelope.MsgID) {
	p.mu.Lock()
	c := p.byID[id]
	if c != nil && c.resend != nil && !c.resend.Cast {
		p.mu.Unlock()
		return
	}
	if c != nil {
		delete(p.byID, id)
	}
	p.mu.Unlock()
	if c != nil {
		c.Finish(Result{Kind: envelope.KindAck})
	}
}

// CodeNoRoute is the ERROR code of a router proxy with no connection to
// the server a request names.
const CodeNoRoute = "NoRoute"

// rerouted reports whether an ERROR is a router proxy's NoRoute for a
// message that is resent anyway (through the next proxy): then it is not
// the call's outcome.
func (p *Pending) rerouted(h *envelope.Header, body []byte) bool {
	p.mu.Lock()
	c := p.byID[h.ID]
	p.mu.Unlock()
	if c == nil || !c.Resent() {
		return false
	}
	code, _, err := envelope.DecodeError(body)
	return err == nil && code == CodeNoRoute
}

// Fail ends the call with a local error (e.g. its request could not be sent).
func (p *Pending) Fail(c *Call, err error) {
	p.Take(c.ID)
	c.Finish(Result{Err: err})
}

// expire fails every call whose deadline is before now with errTimeout,
// queues the resends that are due on out, and reports how many calls
// remain and which casts expired unacknowledged.
func (p *Pending) expire(now time.Time, errTimeout error, out *sockets.Outbox, retry Retry) (remain int, lostCasts []*Call, resent int) {
	var due []*Call
	var again []sockets.Message
	p.mu.Lock()
	for id, c := range p.byID {
		if !c.Deadline.After(now) {
			due = append(due, c)
			delete(p.byID, id)
			continue
		}
		r := c.resend
		if r == nil || now.Before(r.next) || r.attempt >= retry.Attempts {
			continue
		}
		r.attempt++
		r.next = now.Add(retry.After(r.attempt))
		m := r.Msg
		m.Addr = r.Addrs[r.attempt%len(r.Addrs)]
		again = append(again, m)
	}
	remain = len(p.byID)
	p.mu.Unlock()
	for _, c := range due {
		if c.Finish(Result{Err: errTimeout}) && c.resend != nil && c.resend.Cast {
			lostCasts = append(lostCasts, c)
		}
	}
	for _, m := range again {
		if out.TryPush(m) == nil {
			resent++
		}
	}
	return remain, lostCasts, resent
}

// failAll fails every pending call with err.
func (p *Pending) failAll(err error) {
	p.mu.Lock()
	calls := make([]*Call, 0, len(p.byID))
	for id, c := range p.byID {
		calls = append(calls, c)
		delete(p.byID, id)
	}
	p.mu.Unlock()
	for _, c := range calls {
		c.Finish(Result{Err: err})
	}
}

// ReplyWaiterConfig configures the reply-waiter.
type ReplyWaiterConfig struct {
	Pending  *Pending
	Counters *Counters
	Log      *slog.Logger
	// ErrTimeout is delivered to calls whose deadline passes.
	ErrTimeout error
	// ErrClosed is delivered to calls still pending when the actor stops.
	ErrClosed error
	// Requests is the sender's outbox, for resends; Retry their schedule.
	Requests *sockets.Outbox
	Retry    Retry
}

// ReplyWaiterProps builds the reply-waiter.
func ReplyWaiterProps(cfg ReplyWaiterConfig) *actor.Props {
	return props(func() actor.Actor { return &replyWaiter{cfg: cfg, p: cfg.Pending} })
}

// tick is the reply-waiter's expiry timer firing.
type tick struct{}

// replyWaiter fails calls at their deadline, with one timer for all of
// them that runs only while calls are pending.
type replyWaiter struct {
	cfg   ReplyWaiterConfig
	p     *Pending
	timer *time.Timer
	idle  int
}

func (w *replyWaiter) Receive(c actor.Context) {
	switch c.Message().(type) {
	case tick:
		w.timer = nil
		remain, lost, resent := w.p.expire(time.Now(), w.cfg.ErrTimeout, w.cfg.Requests, w.cfg.Retry)
		w.cfg.Counters.Resends.Add(uint64(resent))
		if len(lost) > 0 {
			w.cfg.Counters.DroppedCasts.Add(uint64(len(lost)))
			w.cfg.Log.Warn("casts dropped: no acknowledgement before their deadline", "count", len(lost))
		}
		if remain == 0 {
			w.idle++
		} else {
			w.idle = 0
		}
		if w.idle < idleTicks {
			w.arm(c)
			return
		}
		// Stop ticking; the next Add kicks us again. Re-check after
		// clearing the flag so that a call added meanwhile is not missed.
		w.p.ticking.Store(false)
		if w.p.Len() > 0 && w.p.ticking.CompareAndSwap(false, true) {
			w.idle = 0
			w.arm(c)
		}
	case *actor.Started:
		self, root := c.Self(), c.ActorSystem().Root
		w.p.kickMu.Lock()
		w.p.kick = func() { root.Send(self, tick{}) }
		w.p.kickMu.Unlock()
		// Whatever was pending before a restart keeps its deadline.
		w.p.ticking.Store(true)
		w.arm(c)
	case *actor.Restarting:
		w.disarm()
	case *actor.Stopping:
		w.disarm()
		w.p.kickMu.Lock()
		w.p.kick = nil
		w.p.kickMu.Unlock()
		w.p.failAll(w.cfg.ErrClosed)
	}
}

func (w *replyWaiter) arm(c actor.Context) {
	if w.timer != nil {
		return
	}
	self, root := c.Self(), c.ActorSystem().Root
	w.timer = time.AfterFunc(ExpiryInterval, func() { root.Send(self, tick{}) })
}

func (w *replyWaiter) disarm() {
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
}
