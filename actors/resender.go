package actors

import (
	"container/heap"
	"log/slog"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/relay-dev/relay/envelope"
)

// Resender sends messages with acks again until they are acknowledged (a
// cast, a publish) or answered (a call), on the Retry schedule, and ends an
// acknowledged cast that is still unacknowledged at its deadline (handed to
// lost: nobody waits for it). It keeps the messages in a heap by next
// due time, with one timer for the earliest: O(log n) per message, no scan
// of the pending calls. The node creates it, so it outlives actor
// restarts; its actor (ResenderProps) does the work. Safe for concurrent
// use.
type Resender struct {
	pending  *Pending
	retry    Retry
	send     func(addr string, rec []byte, deadline int64) error
	lost     func(addr string, rec []byte, attempts int, err error)
	counters *Counters
	log      *slog.Logger
	// Down, when set (before the first Schedule), reports whether the
	// server at addr is down (its connection lost or refused): a call
	// marked with ResentFailover moves off it.
	Down func(addr string) bool
	// Away, when set (before the first Schedule), reports whether the
	// connection to the server at addr is lost now, perhaps for a moment
	// (a restart of its socket): the resend of a call marked with
	// ResentFailover that would go there waits, since it would be held
	// and sent to that server after the reconnection, when the call may
	// have moved to another server and been answered there.
	Away func(addr string) bool
	now  func() time.Time // the clock; time.Now but in tests

	// mu guards the fields below.
	mu    sync.Mutex
	h     resendHeap
	timer *time.Timer
	at    time.Time // when timer fires; zero: not armed
	kick  func()    // tells the actor to run; set while it runs
}

// NewResender makes a resender; send queues a record for an address, and
// lost takes a cast (or publish) that no ACK came for by its deadline.
func NewResender(p *Pending, r Retry, send func(addr string, rec []byte, deadline int64) error,
	lost func(addr string, rec []byte, attempts int, err error), c *Counters, log *slog.Logger) *Resender {
	return &Resender{pending: p, retry: r, send: send, lost: lost, counters: c, log: log, now: time.Now}
}

// Resent marks c, before it is added to the Pending table, as a message
// that is resent to addrs in turn (the first resend to addrs[1 % n]) until
// it is acknowledged (cast) or answered. Schedule it once it is sent.
func (r *Resender) Resent(c *Call, addrs []string, cast bool) {
	c.resend = &Resend{Addrs: addrs, Cast: cast}
}

// ResentFailover is Resent for a call to a bare target with acks: its
// resends go to addrs[0], the server it is sent to, until that server is
// Down (its connection lost or refused); then they go to the next server
// of addrs that is not Down, which runs the handler: it cannot know
// whether the first one ran it, in part or whole.
func (r *Resender) ResentFailover(c *Call, addrs []string) {
	c.resend = &Resend{Addrs: addrs, Failover: len(addrs) > 1}
}

// Schedule starts the resends of c, marked with Resent, added to the
// Pending table and sent once.
func (r *Resender) Schedule(c *Call) {
	r.mu.Lock()
	c.resend.next = r.now().Add(r.retry.Base)
	c.resend.due = due(c, r.retry)
	heap.Push(&r.h, c)
	r.armLocked()
	r.mu.Unlock()
}

// due is when c needs attention next: its next resend, or its deadline.
func due(c *Call, retry Retry) time.Time {
	if retry.exhausted(c.resend.attempt) || c.resend.next.After(c.Deadline) {
		return c.Deadline
	}
	return c.resend.next
}

// armLocked sets the timer for the earliest entry. r.mu must be held.
func (r *Resender) armLocked() {
	if len(r.h) == 0 || r.kick == nil {
		return
	}
	next := r.h[0].resend.due
	if !r.at.IsZero() && !next.Before(r.at) {
		return
	}
	r.at = next
	d := time.Until(next)
	if r.timer == nil {
		kick := r.kick
		r.timer = time.AfterFunc(d, func() { kick() })
		return
	}
	r.timer.Reset(d)
}

// run resends what is due and ends what is past its deadline. Runs in the
// actor.
func (r *Resender) run(now time.Time) {
	type resend struct {
		addr     string
		rec      []byte
		deadline int64
		attempts int
	}
	var out, lost []resend
	r.mu.Lock()
	r.at = time.Time{}
	for len(r.h) > 0 && !r.h[0].resend.due.After(now) {
		c := r.h[0]
		if r.pending.peek(c.ID) != c {
			heap.Pop(&r.h) // answered (or ended by its caller)
			continue
		}
		if !c.Deadline.After(now) {
			heap.Pop(&r.h)
			if c.resend.Cast && r.pending.Fail(c.ID, ErrNoAck) {
				// A call with OnFinish, as every cast with acks has, is
				// never reused: its record stays valid.
				rs := c.resend
				lost = append(lost, resend{addr: rs.Addrs[rs.attempt%len(rs.Addrs)], rec: c.Rec, attempts: rs.attempt})
			}
			continue
		}
		rs := c.resend
		if rs.taken.Swap(false) {
			// Its server runs it (an ACK to a resend): no resend now.
			rs.next = now.Add(max(r.retry.Max, r.retry.After(rs.attempt)))
			rs.due = due(c, r.retry)
			heap.Fix(&r.h, 0)
			continue
		}
		if rs.Failover && r.Away != nil && r.Away(r.next(rs)) {
			// Its server is unreachable for now: look again soon.
			rs.next = now.Add(min(r.retry.Base, awayPoll))
			rs.due = due(c, r.retry)
			heap.Fix(&r.h, 0)
			continue
		}
		rs.attempt++
		rs.next = now.Add(r.retry.After(rs.attempt))
		rs.due = due(c, r.retry)
		heap.Fix(&r.h, 0)
		rec := append([]byte(nil), c.Rec...)
		rec[3] = byte(min(rs.attempt, 255)) // the attempt byte of the header
		out = append(out, resend{addr: r.next(rs), rec: rec, deadline: c.Deadline.UnixNano()})
	}
	r.armLocked()
	r.mu.Unlock()
	for _, m := range out {
		if r.send(m.addr, m.rec, m.deadline) == nil {
			r.counters.Resends.Add(1)
		}
	}
	for _, m := range lost {
		r.lost(m.addr, m.rec, m.attempts, ErrNoAck)
	}
}

// next is where the next resend of rs goes: the next address in turn, or
// with Failover its server, or the next one up when its server is down.
// r.mu must be held.
func (r *Resender) next(rs *Resend) string {
	if !rs.Failover {
		return rs.Addrs[rs.attempt%len(rs.Addrs)]
	}
	if r.Down == nil || !r.Down(rs.Addrs[rs.at]) {
		return rs.Addrs[rs.at]
	}
	// The next server whose connection is up, else the next not down.
	for _, usable := range []func(string) bool{r.Away, r.Down} {
		if usable == nil {
			continue
		}
		for i := 1; i < len(rs.Addrs); i++ {
			if at := (rs.at + i) % len(rs.Addrs); !usable(rs.Addrs[at]) {
				rs.at = at
				r.counters.Failovers.Add(1)
				return rs.Addrs[at]
			}
		}
	}
	return rs.Addrs[rs.at]
}

// awayPoll is how often a resend waiting for its server's connection (Away)
// looks again.
const awayPoll = 50 * time.Millisecond

// ErrNoAck ends a cast or publish with acks that no ACK came for by its
// deadline.
var ErrNoAck = errorString("actors: no acknowledgement before the deadline")

type errorString string

func (e errorString) Error() string { return string(e) }

// Resends reports whether the message with id is pending and resent by
// the resender (so a failed attempt is not its outcome).
func (r *Resender) Resends(id envelope.MsgID) bool {
	c := r.pending.peek(id)
	return c != nil && c.Resent()
}

// Attempts returns how often c was resent so far.
func (r *Resender) Attempts(c *Call) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c.resend == nil {
		return 0
	}
	return c.resend.attempt
}

// Len returns the number of messages scheduled.
func (r *Resender) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.h)
}

// resendHeap orders calls by due time.
type resendHeap []*Call

func (h resendHeap) Len() int           { return len(h) }
func (h resendHeap) Less(i, j int) bool { return h[i].resend.due.Before(h[j].resend.due) }
func (h resendHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].resend.index, h[j].resend.index = i, j
}
func (h *resendHeap) Push(x any) {
	c := x.(*Call)
	c.resend.index = len(*h)
	*h = append(*h, c)
}
func (h *resendHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return c
}

// ResenderConfig configures the resender actor.
type ResenderConfig struct {
	Resender *Resender
	Pending  *Pending
	// ErrClosed is delivered to calls still pending when the actor stops.
	ErrClosed error
}

// ResenderProps builds the resender's actor: it runs the resends when
// they are due and, when it stops (the node closes), fails every call
// still pending.
func ResenderProps(cfg ResenderConfig) *actor.Props {
	return props(func() actor.Actor { return &resenderActor{cfg: cfg} })
}

type resenderActor struct{ cfg ResenderConfig }

// resendTick is the resender's timer firing.
type resendTick struct{}

func (a *resenderActor) Receive(c actor.Context) {
	r := a.cfg.Resender
	switch c.Message().(type) {
	case resendTick:
		r.run(time.Now())
	case *actor.Started:
		self, root := c.Self(), c.ActorSystem().Root
		r.mu.Lock()
		r.kick = func() { root.Send(self, resendTick{}) }
		r.timer, r.at = nil, time.Time{}
		r.armLocked()
		r.mu.Unlock()
	case *actor.Restarting:
		a.disarm()
	case *actor.Stopping:
		a.disarm()
		a.cfg.Pending.FailAll(a.cfg.ErrClosed)
	}
}

func (a *resenderActor) disarm() {
	r := a.cfg.Resender
	r.mu.Lock()
	if r.timer != nil {
		r.timer.Stop()
	}
	// A restart's next incarnation arms it again; a stop leaves it off.
	r.timer, r.at, r.kick = nil, time.Time{}, nil
	r.mu.Unlock()
}
