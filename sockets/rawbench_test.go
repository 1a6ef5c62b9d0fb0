package sockets

import (
	"bytes"
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// The measurements cannot check speed, but they can check themselves:
// every echo is compared with what was sent (a wrong echo is an error), and
// what they report must fit in the time the call took.

func TestRawRoundTrip(t *testing.T) {
	start := time.Now()
	res, err := RawRoundTrip(context.Background(), 500, 100)
	wall := time.Since(start)
	if err != nil {
		t.Fatalf("RawRoundTrip: %v", err)
	}
	if res.N != 500 {
		t.Errorf("N = %d, want 500", res.N)
	}
	if res.P50 > res.P99 {
		t.Errorf("p50 %v > p99 %v", res.P50, res.P99)
	}
	if sum := res.Mean * time.Duration(res.N); sum > wall || res.P99 > wall {
		t.Errorf("%d round trips of mean %v (sum %v, p99 %v) do not fit in the %v the call took", res.N, res.Mean, sum, res.P99, wall)
	}
	t.Logf("raw round trip 100 B: n=%d p50=%v p99=%v mean=%v", res.N, res.P50, res.P99, res.Mean)
	goleak.VerifyNone(t)
}

func TestRawPipelined(t *testing.T) {
	const n = 500
	for _, c := range []int{1, 32, 1000} { // 1000 > n: capped to n
		start := time.Now()
		rate, err := RawPipelined(context.Background(), c, n, 100)
		wall := time.Since(start)
		if err != nil {
			t.Fatalf("RawPipelined(concurrency=%d): %v", c, err)
		}
		// The rate is measured over part of the call, so it is at least
		// n over the whole call.
		if floor := n / wall.Seconds(); rate < floor || math.IsInf(rate, 0) || math.IsNaN(rate) {
			t.Errorf("RawPipelined(concurrency=%d) = %v round trips/s, but %d took %v (%.0f/s)", c, rate, n, wall, floor)
		}
		t.Logf("raw pipelined 100 B, concurrency %d: %.0f round trips/s", c, rate)
	}
	goleak.VerifyNone(t)
}

func TestRawPushPull(t *testing.T) {
	const n = 500
	start := time.Now()
	rate, err := RawPushPull(context.Background(), n, 100)
	wall := time.Since(start)
	if err != nil {
		t.Fatalf("RawPushPull: %v", err)
	}
	// Measured between the first and the last message: n-1 intervals
	// within the call.
	if floor := (n - 1) / wall.Seconds(); rate < floor || math.IsInf(rate, 0) || math.IsNaN(rate) {
		t.Errorf("RawPushPull = %v msgs/s, but %d took %v (%.0f/s)", rate, n, wall, floor)
	}
	t.Logf("raw push/pull 100 B: %.0f msgs/s", rate)
	goleak.VerifyNone(t)
}

// A payload that does not come back as sent is an error.
func TestRawSame(t *testing.T) {
	p := rawPayload(100)
	if err := rawSame([][]byte{bytes.Clone(p)}, p); err != nil {
		t.Errorf("an identical echo: %v", err)
	}
	changed := bytes.Clone(p)
	changed[99]++
	for name, msg := range map[string][][]byte{
		"changed": {changed}, "truncated": {p[:99]}, "two frames": {p, p}, "none": nil,
	} {
		if rawSame(msg, p) == nil {
			t.Errorf("%s echo accepted", name)
		}
	}
	if bytes.Count(p, []byte{0}) == len(p) {
		t.Error("payload is all zeros: a zeroed echo would pass")
	}
}

func TestRawBadArguments(t *testing.T) {
	ctx := context.Background()
	if _, err := RawRoundTrip(ctx, 0, 100); err == nil {
		t.Error("RawRoundTrip(n=0): want error")
	}
	if _, err := RawPipelined(ctx, 0, 10, 100); err == nil {
		t.Error("RawPipelined(concurrency=0): want error")
	}
	if _, err := RawPushPull(ctx, 1, 100); err == nil {
		t.Error("RawPushPull(n=1): want error")
	}
	goleak.VerifyNone(t)
}

// A measurement far too long to finish stops at ctx's deadline, returns
// ctx.Err() unchanged, and leaves nothing running.
func TestRawContextDeadline(t *testing.T) {
	const huge = 1 << 40
	for name, run := range map[string]func(context.Context) error{
		"round trip": func(ctx context.Context) error { _, err := RawRoundTrip(ctx, 1<<30, 100); return err },
		"pipelined":  func(ctx context.Context) error { _, err := RawPipelined(ctx, 32, huge, 100); return err },
		"push/pull":  func(ctx context.Context) error { _, err := RawPushPull(ctx, huge, 100); return err },
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			start := time.Now()
			err := run(ctx)
			if !errors.Is(err, context.DeadlineExceeded) || err != context.DeadlineExceeded {
				t.Fatalf("err = %v, want context.DeadlineExceeded unwrapped", err)
			}
			t.Logf("returned %v after the call started", time.Since(start))
		})
	}
	goleak.VerifyNone(t)
}

func TestRawCanceledBeforeStart(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := RawRoundTrip(ctx, 10, 100); err != context.Canceled {
		t.Errorf("RawRoundTrip: err = %v, want context.Canceled", err)
	}
	if _, err := RawPipelined(ctx, 4, 10, 100); err != context.Canceled {
		t.Errorf("RawPipelined: err = %v, want context.Canceled", err)
	}
	if _, err := RawPushPull(ctx, 10, 100); err != context.Canceled {
		t.Errorf("RawPushPull: err = %v, want context.Canceled", err)
	}
	goleak.VerifyNone(t)
}

// The benchmarks set ns/op from the measurement itself: the call also
// makes a context, binds, warms up and tears down, which b's own timer
// would count (b.ResetTimer cannot reach inside the call).

// BenchmarkRawRoundTrip: ns/op is the mean round trip.
func BenchmarkRawRoundTrip(b *testing.B) {
	res, err := RawRoundTrip(context.Background(), b.N, 100)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(res.Mean.Nanoseconds()), "ns/op")
	b.ReportMetric(float64(res.P50.Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(res.P99.Nanoseconds()), "p99-ns")
}

// BenchmarkRawPipelined: ns/op is the time per round trip at 32 in flight.
func BenchmarkRawPipelined(b *testing.B) {
	rate, err := RawPipelined(context.Background(), 32, b.N, 100)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(1e9/rate, "ns/op")
	b.ReportMetric(rate, "rt/s")
}

// BenchmarkRawPushPull: ns/op is the time per message at the receiver.
func BenchmarkRawPushPull(b *testing.B) {
	rate, err := RawPushPull(context.Background(), max(b.N, 2), 100)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(1e9/rate, "ns/op")
	b.ReportMetric(rate, "msgs/s")
}
