package actors

import (
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relay-dev/relay/envelope"
)

// Result is the one outcome of a call: a REPLY, ERROR or ACK record, or a
// local error.
type Result struct {
	Kind envelope.Kind // KindReply, KindError or KindAck when Err is nil
	Body []byte        // aliases the batch it arrived in, which it keeps alive
	Meta []byte        // the answer's meta field (headers), aliasing the batch too
	Err  error
}

// Call is a request waiting for its outcome. Exactly one Result is
// delivered on Done, by whoever takes the call out of the Pending table:
// the reply's receiver, or the caller itself at its deadline or
// cancellation. Calls are reused (see Pending.Get and Pending.Put); a Call
// that is resent until acknowledged is never reused, since the resender
// holds it.
type Call struct {
	ID       envelope.MsgID
	Deadline time.Time
	// Rec is the request's record; the caller encodes into it. It is kept
	// for resends.
	Rec []byte
	// Addr is the peer the request was sent to: an answer is taken only
	// from the connection towards it (or, when the request is resent,
	// towards one of the addresses it is resent to). Set it before Add.
	Addr string

	done     chan Result  // capacity 1
	timer    *time.Timer  // the caller's deadline timer, reused
	onFinish func(Result) // when set, gets the outcome instead of done

	// Resend state, owned by the resender once the call is added to it.
	resend *Resend
}

// Done delivers the outcome.
func (c *Call) Done() <-chan Result { return c.done }

// Timer returns the call's deadline timer, stopped, for the caller to
// Reset; it is reused with the call.
func (c *Call) Timer() *time.Timer {
	if c.timer == nil {
		c.timer = time.NewTimer(time.Hour)
		c.timer.Stop()
	}
	return c.timer
}

// OnFinish makes f get c's outcome, instead of a caller waiting on Done.
// f runs in the goroutine that finishes the call (a socket loop, the
// resender, a closing node) and must not block. Set it before the call is
// added to the table; such a call is never reused.
func (c *Call) OnFinish(f func(Result)) { c.onFinish = f }

// Resent reports whether c is resent until acknowledged or answered.
func (c *Call) Resent() bool { return c.resend != nil }

// Retry says when an unacknowledged message is sent again: after Base,
// then Base×Multiplier, …, each wait at most Max (when set), at most
// Attempts times (0: no limit), never past its deadline.
type Retry struct {
	Base       time.Duration
	Multiplier float64
	Attempts   int
	Max        time.Duration
}

// After returns the wait before resend number attempt+1.
func (r Retry) After(attempt int) time.Duration {
	d := time.Duration(float64(r.Base) * math.Pow(r.Multiplier, float64(attempt)))
	if r.Max > 0 && (d > r.Max || d <= 0) {
		return r.Max
	}
	return d
}

// exhausted reports whether attempt resends are all there are.
func (r Retry) exhausted(attempt int) bool { return r.Attempts > 0 && attempt >= r.Attempts }

// Resend is what the resender needs to send a message again.
type Resend struct {
	Addrs []string // where to send it, in turn
	Cast  bool     // done at its ACK (a call is done at its reply)
	// Failover: resends go to Addrs[at] (the server it was sent to first)
	// until that server is down (Resender.Down), then to the next of
	// Addrs that is not. Else to Addrs in turn.
	Failover bool
	at       int // Failover: the server it goes to
	// taken: an ACK came for the call since its last resend — its server
	// has it and is running its handler — so the next resend waits the
	// longest wait of the schedule (Retry.Max).
	taken   atomic.Bool
	attempt int
	next    time.Time // the next resend
	due     time.Time // the next resend, or the deadline when none is left
	index   int       // in the resender's heap
}

// pendingShards spreads the table over locks, so that concurrent callers
// and the reply path rarely wait for each other.
const pendingShards = 32

// Pending is the table of calls waiting for an answer, by msg_id. The node
// creates it, so it outlives actor restarts: a caller adds its call before
// sending, and the receiving loop takes it out when the answer arrives,
// with no actor hop on the reply path. Safe for concurrent use.
type Pending struct {
	shards [pendingShards]pendingShard
	pool   sync.Pool
}

type pendingShard struct {
	mu   sync.Mutex
	byID map[envelope.MsgID]*Call
	_    [40]byte // keep shards on their own cache lines
}

// NewPending makes an empty table.
func NewPending() *Pending {
	p := &Pending{}
	for i := range p.shards {
		p.shards[i].byID = make(map[envelope.MsgID]*Call)
	}
	p.pool.New = func() any { return &Call{done: make(chan Result, 1)} }
	return p
}

func (p *Pending) shard(id envelope.MsgID) *pendingShard {
	return &p.shards[id[15]%pendingShards]
}

// Get returns a call (new or reused) with a fresh msg_id and deadline.
func (p *Pending) Get(deadline time.Time) *Call {
	c := p.pool.Get().(*Call)
	c.ID, c.Deadline = envelope.NewMsgID(), deadline
	return c
}

// GetFor returns a call (new or reused) for a message whose msg_id is id.
func (p *Pending) GetFor(id envelope.MsgID, deadline time.Time) *Call {
	c := p.pool.Get().(*Call)
	c.ID, c.Deadline = id, deadline
	return c
}

// Put gives c back for reuse. Call it only when c's outcome was received
// and nobody else holds it (not for calls that are resent).
func (p *Pending) Put(c *Call) {
	if c.resend != nil || c.onFinish != nil {
		return
	}
	c.Rec, c.Addr = c.Rec[:0], ""
	if cap(c.Rec) > 64<<10 {
		c.Rec = nil
	}
	p.pool.Put(c)
}

// Add registers c; its answer is correlated by c.ID.
func (p *Pending) Add(c *Call) {
	s := p.shard(c.ID)
	s.mu.Lock()
	s.byID[c.ID] = c
	s.mu.Unlock()
}

// Take removes and returns the call with id, or nil. Whoever takes a call
// delivers its one Result.
func (p *Pending) Take(id envelope.MsgID) *Call {
	s := p.shard(id)
	s.mu.Lock()
	c := s.byID[id]
	if c != nil {
		delete(s.byID, id)
	}
	s.mu.Unlock()
	return c
}

// peek returns the call with id without removing it.
func (p *Pending) peek(id envelope.MsgID) *Call {
	s := p.shard(id)
	s.mu.Lock()
	c := s.byID[id]
	s.mu.Unlock()
	return c
}

// Len returns the number of pending calls.
func (p *Pending) Len() int {
	n := 0
	for i := range p.shards {
		s := &p.shards[i]
		s.mu.Lock()
		n += len(s.byID)
		s.mu.Unlock()
	}
	return n
}

// Finish takes the call with id and delivers r; it reports whether a call
// was waiting.
func (p *Pending) Finish(id envelope.MsgID, r Result) bool {
	c := p.Take(id)
	if c == nil {
		return false
	}
	if c.onFinish != nil {
		c.onFinish(r)
		return true
	}
	c.done <- r
	return true
}

// Fail ends the call with id with a local error, if it is still pending.
func (p *Pending) Fail(id envelope.MsgID, err error) bool {
	return p.Finish(id, Result{Err: err})
}

// CodeNoRoute is the ERROR code of a router proxy with no connection to
// the server a request names.
const CodeNoRoute = "NoRoute"

// CodeNoSubscribers is the ERROR code of a publisher proxy (with acks)
// that no subscriber would receive a message from.
const CodeNoSubscribers = "NoSubscribers"

// Answer delivers a REPLY, ERROR or ACK record that arrived from the peer
// at from to its call ("" for an answer handed over by a node of the same
// process). It runs in the receiving loop. An answer nobody waits for is
// counted as late; one that came from another peer than its call was sent
// to is a forgery (or misrouted) and is dropped and counted as stray. An
// ACK ends a cast (and a publish); a call keeps waiting for its reply. A
// proxy's NoRoute or NoSubscribers for a message that is resent anyway is
// not its outcome: the next resend goes through another proxy.
func (p *Pending) Answer(v *envelope.View, from string, counters *Counters) {
	id, kind := v.ID(), v.Kind()
	if kind == envelope.KindAck {
		counters.AcksReceived.Add(1)
	}
	s := p.shard(id)
	s.mu.Lock()
	c := s.byID[id]
	switch {
	case c == nil:
		s.mu.Unlock()
		if kind != envelope.KindAck {
			counters.LateReplies.Add(1)
		}
		return
	case from != "" && !c.sentTo(from):
		s.mu.Unlock()
		counters.StrayReplies.Add(1)
		return
	}
	keep := false
	switch kind {
	case envelope.KindAck:
		keep = c.resend != nil && !c.resend.Cast // a call is answered by its reply
		if keep {
			c.resend.taken.Store(true)
		}
	case envelope.KindError:
		if c.resend != nil {
			code, _, err := envelope.DecodeError(v.Body())
			keep = err == nil && (code == CodeNoRoute || code == CodeNoSubscribers)
		}
	}
	if keep {
		s.mu.Unlock()
		return
	}
	delete(s.byID, id)
	s.mu.Unlock()
	r := Result{Kind: kind, Body: v.Body(), Meta: v.Meta()}
	if c.onFinish != nil {
		c.onFinish(r)
		return
	}
	c.done <- r
}

// sentTo reports whether c was sent (or is resent) to addr. The shard's
// lock must be held.
func (c *Call) sentTo(addr string) bool {
	if c.Addr == addr {
		return true
	}
	return c.resend != nil && slices.Contains(c.resend.Addrs, addr)
}

// each calls f with every pending call.
func (p *Pending) each(f func(*Call)) {
	for i := range p.shards {
		s := &p.shards[i]
		s.mu.Lock()
		calls := make([]*Call, 0, len(s.byID))
		for _, c := range s.byID {
			calls = append(calls, c)
		}
		s.mu.Unlock()
		for _, c := range calls {
			f(c)
		}
	}
}

// FailAll fails every pending call with err.
func (p *Pending) FailAll(err error) {
	p.each(func(c *Call) { p.Fail(c.ID, err) })
}
