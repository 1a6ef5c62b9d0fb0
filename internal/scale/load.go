package scale

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/relay-dev/relay"
)

// paceTick is how often the load's pacer hands out work.
const paceTick = 10 * time.Millisecond

// loadWorkers is how many goroutines send each kind of load; a send that
// finds them all busy is skipped (and counted).
const loadWorkers = 64

// pace runs send about rate times a second, from loadWorkers goroutines,
// until the host closes.
func (h *Host) pace(rate float64, send func(ctx context.Context, rng *rand.Rand)) {
	if rate <= 0 {
		return
	}
	jobs := make(chan struct{}, loadWorkers)
	for w := range loadWorkers {
		h.wg.Go(func() { // ends at Close
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(w)))
			for {
				select {
				case <-h.ctx.Done():
					return
				case <-jobs:
					send(h.ctx, rng)
				}
			}
		})
	}
	h.wg.Go(func() { // ends at Close
		t := time.NewTicker(paceTick)
		defer t.Stop()
		owed := 0.0
		for {
			select {
			case <-h.ctx.Done():
				return
			case <-t.C:
			}
			owed += rate * paceTick.Seconds()
			for ; owed >= 1; owed-- {
				select {
				case jobs <- struct{}{}:
				default:
					h.rec.skip()
				}
			}
		}
	})
}

// live returns the nodes that started, with their indexes.
func (h *Host) live(from, to int) []int {
	var js []int
	for j := from; j < to && j < len(h.nodes); j++ {
		if h.nodes[j] != nil {
			js = append(js, j)
		}
	}
	return js
}

// callConductor: a random compute of this process calls a conductor
// (bare target: round-robin), as a compute reports its state.
func (h *Host) callConductor(ctx context.Context, rng *rand.Rand) {
	j := rng.IntN(len(h.nodes))
	n := h.nodes[j]
	if n == nil {
		return
	}
	h.timedCall(ctx, n, relay.Target{Topic: TopicConductor}, MethodReport, h.names[j])
}

// callCompute: the api calls a random compute, directed.
func (h *Host) callCompute(ctx context.Context, rng *rand.Rand) {
	api := h.nodes[len(h.nodes)-1]
	if api == nil || h.spec.Nodes == 0 {
		return
	}
	h.timedCall(ctx, api, relay.Target{Topic: TopicCompute, Server: ComputeName(rng.IntN(h.spec.Nodes))}, MethodConsole, nil)
}

// timedCall makes one call and records its outcome and latency. The end
// of the load (ctx) does not cut it short: stopLoad waits for it, so that
// every call sent is counted.
func (h *Host) timedCall(ctx context.Context, n *relay.Node, t relay.Target, method string, arg any) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.spec.Timeout)
	defer cancel()
	start := time.Now()
	var reply string
	err := n.Call(cctx, t, method, arg, &reply)
	h.rec.call(time.Since(start), err)
}

// castBuild: a random scheduler casts to a random compute, directed.
func (h *Host) castBuild(ctx context.Context, rng *rand.Rand) {
	s := h.spec
	n := h.nodes[s.Conductors+rng.IntN(s.Schedulers)]
	if n == nil || s.Nodes == 0 {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.Timeout)
	defer cancel()
	err := n.Cast(cctx, relay.Target{Topic: TopicCompute, Server: ComputeName(rng.IntN(s.Nodes))}, MethodBuild, nil)
	h.rec.cast(err) // also as the load ends: it arrives
}

// fanouts sends, every FanoutEvery, a fanout to every compute (from the
// first scheduler) and a notification (from the api). Runs in its own
// goroutine until Close.
func (h *Host) fanouts() {
	t := time.NewTicker(h.spec.FanoutEvery)
	defer t.Stop()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-t.C:
		}
		h.broadcast(h.ctx, h.seq.Add(1))
	}
}

// broadcast sends fanout and notification number n, in parallel. The end
// of the load (ctx) does not cut them short: both are counted.
func (h *Host) broadcast(ctx context.Context, n int64) {
	s := h.spec
	sched, api := h.nodes[s.Conductors], h.nodes[len(h.nodes)-1]
	var wg sync.WaitGroup
	for _, fanout := range []bool{true, false} {
		wg.Go(func() {
			st := Stamp{Seq: n, Sent: time.Now().UnixNano()}
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.Timeout)
			defer cancel()
			var err error
			switch {
			case fanout && sched != nil:
				err = sched.Cast(cctx, relay.Target{Topic: TopicCompute, Fanout: true}, MethodUpdate, st)
			case !fanout && api != nil:
				err = api.Notify(cctx, relay.Notification{Topic: TopicEvents, EventType: EventUpdate, Payload: st})
			default:
				err = fmt.Errorf("its sender did not start")
			}
			h.rec.sent(fanout, st, err)
		})
	}
	wg.Wait()
}

// sweep has the api call every compute once, parallel at a time, and
// returns the first that did not answer.
func (h *Host) sweep(ctx context.Context, parallel int) error {
	_, first := h.sweepAll(ctx, parallel)
	return first
}

// sweepAll has the api call every compute once, parallel at a time, and
// returns the computes that did not answer (by index) and the first
// failure.
func (h *Host) sweepAll(ctx context.Context, parallel int) (missing []int, first error) {
	api := h.nodes[len(h.nodes)-1]
	if api == nil {
		return nil, fmt.Errorf("scale: the api node did not start")
	}
	sem := make(chan struct{}, parallel)
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for i := range h.spec.Nodes {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			cctx, cancel := context.WithTimeout(ctx, h.spec.Timeout)
			defer cancel()
			var got string
			err := api.Call(cctx, relay.Target{Topic: TopicCompute, Server: ComputeName(i)}, MethodConsole, nil, &got)
			if err == nil && got != ComputeName(i) {
				err = fmt.Errorf("answered by %q", got)
			}
			if err != nil {
				mu.Lock()
				missing = append(missing, i)
				if first == nil {
					first = fmt.Errorf("%s: %w", ComputeName(i), err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return missing, first
}
