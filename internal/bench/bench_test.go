package bench

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestCallLatency(t *testing.T) {
	defer goleak.VerifyNone(t)
	res, err := CallLatency(context.Background(), 50, 100)
	if err != nil {
		t.Fatalf("CallLatency: %v", err)
	}
	if res.N != 50 || res.P50 <= 0 || res.P50 > res.P99 {
		t.Errorf("CallLatency = %+v, want n=50 and 0 < p50 <= p99", res)
	}
}

func TestPipelinedCalls(t *testing.T) {
	defer goleak.VerifyNone(t)
	res, err := PipelinedCalls(context.Background(), 4, 100, 100)
	if err != nil {
		t.Fatalf("PipelinedCalls: %v", err)
	}
	if res.N != 100 || res.Concurrency != 4 || res.Rate <= 0 {
		t.Errorf("PipelinedCalls = %+v, want n=100 concurrency=4 rate > 0", res)
	}
}

func TestCasts(t *testing.T) {
	defer goleak.VerifyNone(t)
	res, err := Casts(context.Background(), 200, 100)
	if err != nil {
		t.Fatalf("Casts: %v", err)
	}
	if res.Sent != 200 || res.Received != 200 || !res.Complete || res.Rate <= 0 {
		t.Errorf("Casts = %+v, want 200 sent and received, complete, rate > 0", res)
	}
}

func TestRun(t *testing.T) {
	defer goleak.VerifyNone(t)
	cfg := Config{N: 20, Calls: 50, Concurrency: 4, Casts: 100, Size: 100}
	var steps int
	rep, err := Run(context.Background(), cfg, func(string) { steps++ })
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if steps != 12 {
		t.Errorf("step called %d times, want 12 (start and end of 6 measurements)", steps)
	}
	if rep.RawLatency.P50 <= 0 || rep.RawPipelined.Rate <= 0 || rep.RawPushPull.Rate <= 0 {
		t.Errorf("raw figures missing: %+v", rep)
	}
	if rep.LatencyRatio() <= 0 || rep.PipelinedRatio() <= 0 || rep.CastRatio() <= 0 {
		t.Errorf("ratios not positive: %v %v %v", rep.LatencyRatio(), rep.PipelinedRatio(), rep.CastRatio())
	}
	if got := len(rep.Targets()); got != 3 {
		t.Errorf("Targets: %d checks, want 3", got)
	}
}

func TestTargets(t *testing.T) {
	r := Report{
		RelayLatency: Latency{P50: 120 * time.Microsecond}, RawLatency: Latency{P50: 100 * time.Microsecond},
		RelayPipelined: Throughput{Rate: 100_000},
		RelayCasts:     CastResult{Rate: 600_000, Complete: true}, RawPushPull: Throughput{Rate: 1_000_000},
	}
	met := []bool{true, false, true}
	for i, c := range r.Targets() {
		if c.Met != met[i] {
			t.Errorf("%s: met = %v, want %v (got %v)", c.Name, c.Met, met[i], c.Got)
		}
	}
	r.RelayCasts.Complete = false
	if r.Targets()[2].Met {
		t.Error("cast target met although casts went missing")
	}
}

func TestBadArguments(t *testing.T) {
	ctx := context.Background()
	if _, err := CallLatency(ctx, 0, 100); err == nil {
		t.Error("CallLatency(n=0): want error")
	}
	if _, err := PipelinedCalls(ctx, 0, 10, 100); err == nil {
		t.Error("PipelinedCalls(concurrency=0): want error")
	}
	if _, err := Casts(ctx, 1, 100); err == nil {
		t.Error("Casts(n=1): want error")
	}
}

func TestOneToMany(t *testing.T) {
	defer goleak.VerifyNone(t)
	for _, proxy := range []bool{false, true} {
		f, err := Fanout(context.Background(), proxy, 3, 50, 100)
		if err != nil || f.Delivered != 150 || f.Rate <= 0 {
			t.Errorf("Fanout(proxy=%v) = %+v, %v; want 150 deliveries", proxy, f, err)
		}
		nt, err := Notify(context.Background(), proxy, 50, 100)
		if err != nil || nt.Delivered != 50 || nt.Rate <= 0 {
			t.Errorf("Notify(proxy=%v) = %+v, %v; want 50 deliveries", proxy, nt, err)
		}
	}
}

func TestConnectionsAndRouted(t *testing.T) {
	defer goleak.VerifyNone(t)
	c, err := Connections(context.Background(), 8, 2)
	if err != nil {
		t.Fatal(err)
	}
	// 4 clients x 4 servers directly; 8 nodes x 2 proxies routed.
	if c.Direct != 16 || c.Routed != 16 {
		t.Errorf("connections %+v: want direct 16 (4 clients x 4 servers) and routed 16 (8 nodes x 2 proxies)", c)
	}
	l, err := RoutedCallLatency(context.Background(), 20, 100)
	if err != nil || l.N != 20 {
		t.Errorf("RoutedCallLatency = %+v, %v", l, err)
	}
}
