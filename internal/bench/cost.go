package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/metrics"
	"runtime/trace"
	"time"

	xtrace "golang.org/x/exp/trace"
)

// Cost is what one operation costs in this process, averaged over many:
// goroutine hand-offs (a goroutine made runnable by another goroutine, or
// by the netpoller when a socket it waits on becomes ready), cgo calls, and
// heap allocations and bytes. Background work of the process (timers,
// renewals) during the measurement is counted too; it is small next to
// thousands of operations.
type Cost struct {
	Ops      int     `json:"ops"`
	Traced   int     `json:"traced"`      // operations traced for Handoffs and Netpoll
	Handoffs float64 `json:"handoffs"`    // goroutine wake-ups by another goroutine
	Netpoll  float64 `json:"netpoll"`     // goroutine wake-ups by the netpoller (socket readiness)
	Cgo      float64 `json:"cgo_calls"`   // calls from Go into C
	Allocs   float64 `json:"allocs"`      // heap allocations
	Bytes    float64 `json:"alloc_bytes"` // heap bytes allocated
	Elapsed  float64 `json:"elapsed_ns"`  // wall time per operation while measured
}

// cgoCalls reads the process's count of calls into C.
func cgoCalls() uint64 {
	s := []metrics.Sample{{Name: "/cgo/go-to-c-calls:calls"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// MeasureCost runs op n times, one after the other, and returns its cost:
// cgo calls and allocations over all n, and hand-offs from a runtime trace
// of the first traced of them (tracing slows the process down, so only a
// part of the run is traced).
func MeasureCost(n, traced int, op func() error) (Cost, error) {
	return measureCost(n, traced, func(k int) error {
		for i := 0; i < k; i++ {
			if err := op(); err != nil {
				return err
			}
		}
		return nil
	})
}

// measureCost is MeasureCost of run, which does k operations and returns
// once they are done (for casts: handled by the receiver, so that its work
// counts too).
func measureCost(n, traced int, run func(k int) error) (Cost, error) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	cgo0 := cgoCalls()
	start := time.Now()
	if err := run(n); err != nil {
		return Cost{}, err
	}
	elapsed := time.Since(start)
	cgo1 := cgoCalls()
	runtime.ReadMemStats(&after)
	c := Cost{
		Ops:     n,
		Cgo:     float64(cgo1-cgo0) / float64(n),
		Allocs:  float64(after.Mallocs-before.Mallocs) / float64(n),
		Bytes:   float64(after.TotalAlloc-before.TotalAlloc) / float64(n),
		Elapsed: float64(elapsed) / float64(n),
	}
	if traced <= 0 {
		return c, nil
	}
	var buf bytes.Buffer
	if err := trace.Start(&buf); err != nil {
		return c, fmt.Errorf("bench: start trace: %w", err)
	}
	if err := run(traced); err != nil {
		trace.Stop()
		return Cost{}, err
	}
	trace.Stop()
	byGo, byNet, err := countWakeups(&buf)
	if err != nil {
		return c, err
	}
	c.Traced = traced
	c.Handoffs = float64(byGo) / float64(traced)
	c.Netpoll = float64(byNet) / float64(traced)
	return c, nil
}

// CallCost is the Cost of one sequential relay call of a size-byte echo
// over tcp: n calls counted, traced of them traced, after warm-up calls.
func CallCost(ctx context.Context, n, traced, size int) (c Cost, err error) {
	p, payload, err := measuredPair(ctx, "call cost", mode{}, n, size)
	if err != nil {
		return Cost{}, err
	}
	defer p.close(&err)
	var out []byte
	return MeasureCost(n, traced, func() error { return p.client.Call(ctx, target, "echo", payload, &out) })
}

// CastCost is the Cost of one relay cast of size bytes over tcp, both
// sides: casts are sent one after the other as fast as Cast accepts them
// (retrying back-pressure) and counted once the receiver handled them all.
func CastCost(ctx context.Context, n, traced, size int) (c Cost, err error) {
	p, payload, err := measuredPair(ctx, "cast cost", mode{}, n, size)
	if err != nil {
		return Cost{}, err
	}
	defer p.close(&err)
	return measureCost(n, traced, func(k int) error {
		want := p.count.Load() + int64(k)
		if _, err := p.castAll(ctx, k, payload); err != nil {
			return err
		}
		complete, err := p.waitCount(ctx, want)
		if err == nil && !complete {
			err = fmt.Errorf("bench: cast cost: %d of %d casts handled (%s)", p.count.Load(), want, p.stats())
		}
		return err
	})
}

// countWakeups counts the goroutines made runnable from waiting in a
// trace: by another goroutine, or by the runtime (the netpoller or a
// timer, with no goroutine running).
func countWakeups(r io.Reader) (byGoroutine, byRuntime int, err error) {
	tr, err := xtrace.NewReader(r)
	if err != nil {
		return 0, 0, fmt.Errorf("bench: read trace: %w", err)
	}
	for {
		ev, err := tr.ReadEvent()
		if errors.Is(err, io.EOF) {
			return byGoroutine, byRuntime, nil
		}
		if err != nil {
			return 0, 0, fmt.Errorf("bench: read trace: %w", err)
		}
		if ev.Kind() != xtrace.EventStateTransition {
			continue
		}
		st := ev.StateTransition()
		if st.Resource.Kind != xtrace.ResourceGoroutine {
			continue
		}
		from, to := st.Goroutine()
		if from != xtrace.GoWaiting || to != xtrace.GoRunnable {
			continue
		}
		if ev.Goroutine() == xtrace.NoGoroutine {
			byRuntime++
		} else {
			byGoroutine++
		}
	}
}
