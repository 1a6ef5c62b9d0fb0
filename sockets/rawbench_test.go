package sockets

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestRawRoundTrip(t *testing.T) {
	res, err := RawRoundTrip(context.Background(), 500, 100)
	if err != nil {
		t.Fatalf("RawRoundTrip: %v", err)
	}
	if res.N != 500 {
		t.Errorf("N = %d, want 500", res.N)
	}
	if res.P50 <= 0 || res.P99 <= 0 || res.Mean <= 0 {
		t.Errorf("non-positive latency: %+v", res)
	}
	if res.P50 > res.P99 {
		t.Errorf("p50 %v > p99 %v", res.P50, res.P99)
	}
	t.Logf("raw round trip 100 B: n=%d p50=%v p99=%v mean=%v", res.N, res.P50, res.P99, res.Mean)
	goleak.VerifyNone(t)
}

func TestRawPipelined(t *testing.T) {
	for _, c := range []int{1, 32, 1000} { // 1000 > n: capped to n
		rate, err := RawPipelined(context.Background(), c, 500, 100)
		if err != nil {
			t.Fatalf("RawPipelined(concurrency=%d): %v", c, err)
		}
		if rate <= 0 {
			t.Errorf("RawPipelined(concurrency=%d) = %v round trips/s, want > 0", c, rate)
		}
		t.Logf("raw pipelined 100 B, concurrency %d: %.0f round trips/s", c, rate)
	}
	goleak.VerifyNone(t)
}

func TestRawPushPull(t *testing.T) {
	rate, err := RawPushPull(context.Background(), 500, 100)
	if err != nil {
		t.Fatalf("RawPushPull: %v", err)
	}
	if rate <= 0 {
		t.Errorf("RawPushPull = %v msgs/s, want > 0", rate)
	}
	t.Logf("raw push/pull 100 B: %.0f msgs/s", rate)
	goleak.VerifyNone(t)
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

// BenchmarkRawRoundTrip reports the raw floor per round trip; its ns/op is
// the mean round trip.
func BenchmarkRawRoundTrip(b *testing.B) {
	res, err := RawRoundTrip(context.Background(), b.N, 100)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(res.P50.Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(res.P99.Nanoseconds()), "p99-ns")
}

func BenchmarkRawPipelined(b *testing.B) {
	rate, err := RawPipelined(context.Background(), 32, b.N, 100)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(rate, "rt/s")
}

func BenchmarkRawPushPull(b *testing.B) {
	rate, err := RawPushPull(context.Background(), max(b.N, 2), 100)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(rate, "msgs/s")
}
