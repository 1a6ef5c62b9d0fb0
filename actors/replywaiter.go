package actors

import (
	"container/heap"
	"errors"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/relay-dev/relay/envelope"
)

// Reply is a REPLY or ERROR message received by the sender.
type Reply struct {
	Header envelope.Header
	Body   []byte
}

// Cancel withdraws a call whose caller gave up (its context was cancelled).
type Cancel struct{ Call *Call }

// Fail ends a call with a local error (e.g. its request could not be sent).
type Fail struct {
	Call *Call
	Err  error
}

// expire is the reply-waiter's timer firing.
type expire struct{}

// Pending is the reply-waiter's table of calls. The node creates it and it
// outlives reply-waiter restarts; only the reply-waiter touches it, from
// Receive.
type Pending struct {
	byID  map[envelope.MsgID]*Call
	dead  deadlineHeap
	timer *time.Timer
	at    time.Time // when timer fires; zero when stopped
}

// NewPending makes an empty table.
func NewPending() *Pending { return &Pending{byID: make(map[envelope.MsgID]*Call)} }

// ReplyWaiterConfig configures the reply-waiter.
type ReplyWaiterConfig struct {
	Pending  *Pending
	Counters *Counters
	Log      *slog.Logger
	// ErrTimeout is delivered to calls whose deadline passes.
	ErrTimeout error
	// ErrClosed is delivered to calls still pending when the actor stops.
	ErrClosed error
}

// ReplyWaiterProps builds the reply-waiter.
func ReplyWaiterProps(cfg ReplyWaiterConfig) *actor.Props {
	return props(func() actor.Actor { return &replyWaiter{cfg: cfg, p: cfg.Pending} })
}

// replyWaiter correlates replies with calls by msg_id and fails each call at
// its deadline with one timer for all of them.
type replyWaiter struct {
	cfg ReplyWaiterConfig
	p   *Pending
}

func (w *replyWaiter) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *Call:
		if m.Finished() {
			return
		}
		w.p.byID[m.ID] = m
		heap.Push(&w.p.dead, m)
		if m.index == 0 {
			w.arm(c)
		}
	case *Reply:
		call, ok := w.p.byID[m.Header.ID]
		if !ok {
			w.cfg.Counters.LateReplies.Add(1)
			return
		}
		w.remove(call)
		if !call.Finish(Result{Kind: m.Header.Kind, Body: m.Body}) {
			w.cfg.Counters.LateReplies.Add(1)
		}
	case *Cancel:
		if _, ok := w.p.byID[m.Call.ID]; ok {
			w.remove(m.Call)
		}
	case *Fail:
		if _, ok := w.p.byID[m.Call.ID]; ok {
			w.remove(m.Call)
		}
		m.Call.Finish(Result{Err: m.Err})
	case expire:
		w.p.at = time.Time{}
		now := time.Now()
		for len(w.p.dead) > 0 && !w.p.dead[0].Deadline.After(now) {
			call := w.p.dead[0]
			w.remove(call)
			call.Finish(Result{Err: w.cfg.ErrTimeout})
		}
		w.arm(c)
	case *actor.Started:
		w.p.at = time.Time{}
		w.arm(c)
	case *actor.Restarting:
		w.disarm()
	case *actor.Stopping:
		w.disarm()
		for _, call := range w.p.byID {
			call.Finish(Result{Err: w.cfg.ErrClosed})
		}
		clear(w.p.byID)
		w.p.dead = nil
	}
}

func (w *replyWaiter) remove(call *Call) {
	delete(w.p.byID, call.ID)
	if call.index >= 0 {
		heap.Remove(&w.p.dead, call.index)
	}
}

// arm sets the timer for the earliest deadline, if it is not set for it yet.
func (w *replyWaiter) arm(c actor.Context) {
	if len(w.p.dead) == 0 {
		return
	}
	next := w.p.dead[0].Deadline
	if !w.p.at.IsZero() && !w.p.at.After(next) {
		return // fires before or at the earliest deadline; it will re-arm
	}
	w.disarm()
	w.p.at = next
	self, root := c.Self(), c.ActorSystem().Root
	w.p.timer = time.AfterFunc(time.Until(next), func() { root.Send(self, expire{}) })
}

func (w *replyWaiter) disarm() {
	if w.p.timer != nil {
		w.p.timer.Stop()
		w.p.timer = nil
	}
	w.p.at = time.Time{}
}

// deadlineHeap orders calls by deadline.
type deadlineHeap []*Call

func (h deadlineHeap) Len() int           { return len(h) }
func (h deadlineHeap) Less(i, j int) bool { return h[i].Deadline.Before(h[j].Deadline) }
func (h deadlineHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *deadlineHeap) Push(x any) {
	c := x.(*Call)
	c.index = len(*h)
	*h = append(*h, c)
}
func (h *deadlineHeap) Pop() any {
	old := *h
	n := len(old)
	c := old[n-1]
	old[n-1] = nil
	c.index = -1
	*h = old[:n-1]
	return c
}

var errNoLoop = errors.New("actors: socket loop not running")
