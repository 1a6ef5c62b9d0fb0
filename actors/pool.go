package actors

import (
	"sync"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/relay-dev/relay/curve"
	"github.com/relay-dev/relay/envelope"
	"github.com/relay-dev/relay/internal/track"
)

// Inbound is a request received by a socket loop, on its way to a
// handler: its record read in place (it aliases the batch it came in,
// which it keeps alive), and the way back for its answer.
type Inbound struct {
	Rec envelope.View
	// From is the routing id of the connection it came in on, in direct
	// mode: its answers go back down that connection.
	From []byte
	// Via is the router proxy (backend endpoint) it came through, in
	// router-proxy mode: its answers go back the same way. Empty when it
	// came straight to the node's ROUTER.
	Via string
	// Local, for a request handed over by a node of the same process, takes
	// its answers (records) directly.
	Local func(rec []byte)
	// Caller is the sender's CURVE public key, as the node's ZAP handler
	// (or, through a router proxy, the proxy's) admitted it, and
	// CallerName its name on the node's allow-list; zero without CURVE.
	Caller     curve.Key
	CallerName string
}

// Pool runs handlers on a bounded set of worker goroutines, fed by the
// socket loops one batch at a time. Workers are started as requests need
// them, up to the bound, and then stay: no goroutine is made per request
// in steady state. A blocking handler holds one worker, never a socket
// loop. The queue in front of the workers is bounded: when it is full,
// Submit says so and the loop stops reading its socket until the pool
// calls resume, so that back-pressure reaches the senders (their queues
// fill, and their callers get an error or wait) instead of requests being
// dropped. Safe for concurrent use.
type Pool struct {
	serve  func(*Inbound)
	group  *track.Group
	max    int    // workers
	limit  int    // queued requests beyond which Submit asks to pause
	bytes  int    // queued bytes beyond which Submit asks to pause (0: none)
	resume func() // restarts the paused loops

	// mu guards the fields below.
	mu      sync.Mutex
	cond    sync.Cond
	q       []Inbound
	head    int
	queued  int // bytes of the records in q[head:]
	idle    int
	workers int
	paused  bool // a loop was asked to pause
	closed  bool
}

// NewPool makes a pool of up to workers goroutines (started in group) that
// call serve for each request, with up to limit requests queued before it
// asks loops to pause; resume is called when there is room again.
func NewPool(serve func(*Inbound), group *track.Group, workers, limit int, resume func()) *Pool {
	p := &Pool{serve: serve, group: group, max: max(workers, 1), limit: max(limit, 1), resume: resume}
	p.cond.L = &p.mu
	return p
}

// LimitBytes makes Submit ask to pause also when the queued records hold n
// bytes or more (0: no bound), so that large requests do not fill memory
// before the count bound is reached. Call it before use.
func (p *Pool) LimitBytes(n int) { p.bytes = n }

// full reports whether the queue is at a bound. p.mu held.
func (p *Pool) full() bool {
	return len(p.q)-p.head >= p.limit || (p.bytes > 0 && p.queued >= p.bytes)
}

// Submit queues a batch of requests; it reports whether the caller (a
// socket loop) should pause reading until resumed. The requests are
// copied; ins may be reused.
func (p *Pool) Submit(ins []Inbound) (pause bool) {
	if len(ins) == 0 {
		return false
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return false
	}
	p.q = append(p.q, ins...)
	for i := range ins {
		p.queued += len(ins[i].Rec.Record())
	}
	wake := min(len(ins), p.idle)
	spawn := 0
	if want := len(p.q) - p.head - p.idle; want > 0 && p.workers < p.max {
		spawn = min(want, p.max-p.workers)
		p.workers += spawn
	}
	if p.full() {
		p.paused, pause = true, true
	}
	p.mu.Unlock()
	for range wake {
		p.cond.Signal()
	}
	for range spawn {
		if p.group.Go(p.work) != nil {
			p.mu.Lock()
			p.workers--
			p.mu.Unlock()
		}
	}
	return pause
}

// Queued returns the number of requests waiting for a worker.
func (p *Pool) Queued() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.q) - p.head
}

// Full reports whether the queue is at its bound.
func (p *Pool) Full() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.full()
}

// Running returns the number of workers running a handler now.
func (p *Pool) Running() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.workers - p.idle
}

// Close makes the workers exit once the queue is empty; Submit then
// refuses (drops) new requests. The caller waits for the group.
func (p *Pool) Close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.cond.Broadcast()
}

// work serves requests until the pool is closed and empty. Runs in its own
// goroutine.
func (p *Pool) work() {
	in := new(Inbound) // reused: one allocation per worker, not per request
	p.mu.Lock()
	for {
		for p.head == len(p.q) && !p.closed {
			p.idle++
			p.cond.Wait()
			p.idle--
		}
		if p.head == len(p.q) {
			p.workers--
			p.mu.Unlock()
			return
		}
		*in = p.q[p.head]
		p.q[p.head] = Inbound{}
		p.head++
		p.queued -= len(in.Rec.Record())
		switch {
		case p.head == len(p.q):
			p.head = 0
			if cap(p.q) > 4*p.limit {
				p.q = nil // give back what a burst grew
			} else {
				p.q = p.q[:0]
			}
		case p.head > 1024 && 2*p.head > len(p.q):
			// Under steady load the queue never empties: move it down.
			n := copy(p.q, p.q[p.head:])
			clear(p.q[n:])
			p.q, p.head = p.q[:n], 0
		}
		resume := p.paused && len(p.q)-p.head < p.limit/2 && (p.bytes == 0 || p.queued < p.bytes/2)
		if resume {
			p.paused = false
		}
		p.mu.Unlock()
		if resume && p.resume != nil {
			p.resume()
		}
		p.serve(in)
		*in = Inbound{} // let the batch it came in go
		p.mu.Lock()
	}
}

// PoolProps builds the handlers actor: the one that owns the handler pool.
// The pool keeps its queue and its workers across the actor's restarts (it
// holds no state of its own), so a restart loses no request; when the
// actor stops (the node closes) the pool finishes what is queued and its
// workers exit.
func PoolProps(p *Pool) *actor.Props {
	return props(func() actor.Actor { return &poolActor{p: p} })
}

type poolActor struct{ p *Pool }

func (a *poolActor) Receive(c actor.Context) {
	if _, ok := c.Message().(*actor.Stopping); ok {
		a.p.Close()
	}
}
