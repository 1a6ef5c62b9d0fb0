package bench

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// The tests use tiny counts and real nodes; they check what the
// measurements report, never how fast anything is.

func TestCallLatency(t *testing.T) {
	defer goleak.VerifyNone(t)
	for name, measure := range map[string]func(context.Context, int, int) (Latency, error){
		"tcp": CallLatency, "inproc": InprocCallLatency, "router proxy": RoutedCallLatency,
	} {
		res, err := measure(context.Background(), 50, 100)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if res.N != 50 || res.P50 <= 0 || res.P50 > res.P99 {
			t.Errorf("%s: %+v, want n=50 and 0 < p50 <= p99", name, res)
		}
	}
}

func TestPipelinedCalls(t *testing.T) {
	defer goleak.VerifyNone(t)
	for name, measure := range map[string]func(context.Context, int, int, int) (Throughput, error){
		"direct": PipelinedCalls, "router proxy": RoutedPipelinedCalls,
	} {
		res, err := measure(context.Background(), 4, 100, 100)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if res.N != 100 || res.Concurrency != 4 || res.Rate <= 0 {
			t.Errorf("%s: %+v, want n=100 concurrency=4 rate > 0", name, res)
		}
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

// Flood's counts add up: every cast is accepted or refused, and what was
// accepted is handled or lost.
func TestFlood(t *testing.T) {
	defer goleak.VerifyNone(t)
	res, err := Flood(context.Background(), 500, 100)
	if err != nil {
		t.Fatalf("Flood: %v", err)
	}
	if res.N != 500 || res.Accepted+res.Refused != 500 || res.Handled+res.Lost < res.Accepted || !res.Complete && res.Lost == 0 {
		t.Errorf("Flood = %+v: want accepted + refused = 500 and handled + lost = accepted", res)
	}
}

func TestCost(t *testing.T) {
	defer goleak.VerifyNone(t)
	for name, measure := range map[string]func(context.Context, int, int, int) (Cost, error){
		"call": CallCost, "cast": CastCost,
	} {
		c, err := measure(context.Background(), 50, 10, 100)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if c.Ops != 50 || c.Traced != 10 || c.Allocs <= 0 || c.Bytes <= 0 || c.Elapsed <= 0 || c.Handoffs+c.Netpoll <= 0 {
			t.Errorf("%s cost = %+v: want 50 ops, 10 traced, allocations, bytes, time and wake-ups", name, c)
		}
	}
}

func TestMemory(t *testing.T) {
	defer goleak.VerifyNone(t)
	idle, err := IdleNodeMemory(context.Background())
	if err != nil {
		t.Fatalf("IdleNodeMemory: %v", err)
	}
	if idle.Count != IdleNodes || idle.HeapBytes == 0 || idle.Goroutines <= 0 {
		t.Errorf("IdleNodeMemory = %+v: want %d nodes, heap and goroutines", idle, IdleNodes)
	}
	pending, err := PendingCallMemory(context.Background(), 100, 100)
	if err != nil {
		t.Fatalf("PendingCallMemory: %v", err)
	}
	if pending.Count != 100 || pending.HeapBytes == 0 {
		t.Errorf("PendingCallMemory = %+v: want 100 calls and a heap figure", pending)
	}
}

// wantRows are the report's rows, in order.
var wantRows = []string{"call_p50", "call_p99", "callers", "casts", "flood_lost", "notify_proxy", "routed",
	"inproc_p50", "call_cgo", "call_allocs", "idle_heap", "pending_heap"}

// A run of two rounds reports every row with a figure per round, each
// ratio row with its baseline and per-round ratios, and every target row
// with a verdict; the gRPC row is measured against --grpc-p50.
func TestRun(t *testing.T) {
	defer goleak.VerifyNone(t)
	cfg := Config{Rounds: 2, N: 20, Calls: 50, Concurrency: 4, Casts: 100, Flood: 200, Pending: 50, Fanouts: 20,
		GRPCP50: 50 * time.Microsecond, Size: 100}
	var steps []string
	rep, err := Run(context.Background(), cfg, func(s string) { steps = append(steps, s) })
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(rep.Rounds) != 2 {
		t.Fatalf("%d rounds, want 2", len(rep.Rounds))
	}
	// Each round: relay then its baseline, every step announced and timed.
	for i, s := range []string{"round 1/2, row 1, relay", "  done in", "round 1/2, row 1, raw"} {
		if !strings.HasPrefix(steps[i], s) {
			t.Errorf("step %d = %q, want %q...", i, steps[i], s)
		}
	}
	if last := steps[len(steps)-2]; !strings.HasPrefix(last, "round 2/2, ") {
		t.Errorf("last step %q, want one of round 2", last)
	}
	if rep.Machine.CPUs < 1 || rep.Machine.GOMAXPROCS < 1 || rep.Machine.LoadStart == "" || rep.Machine.LoadEnd == "" {
		t.Errorf("machine %+v: want CPUs, GOMAXPROCS and load averages", rep.Machine)
	}
	if len(rep.Rows) != len(wantRows) {
		t.Fatalf("%d rows, want %d", len(rep.Rows), len(wantRows))
	}
	for i, row := range rep.Rows {
		if row.Key != wantRows[i] {
			t.Errorf("row %d is %q, want %q", i, row.Key, wantRows[i])
		}
		if len(row.Relay.Rounds) != 2 {
			t.Errorf("%s: relay figures %v, want one per round", row.Key, row.Relay.Rounds)
		}
		if row.Baseline != nil && (len(row.Baseline.Rounds) != 2 || len(row.Ratio.Rounds) != 2 || row.Ratio.Median <= 0) {
			t.Errorf("%s: baseline %+v ratio %+v, want one per round", row.Key, row.Baseline, row.Ratio)
		}
		if row.Target != nil && row.Verdict != Met && row.Verdict != NotMet {
			t.Errorf("%s: verdict %q, want met or not met", row.Key, row.Verdict)
		}
		if row.Target != nil && row.Want == "" {
			t.Errorf("%s: no target in words", row.Key)
		}
	}
	for _, r := range rep.Rounds {
		if r.Flood.N != 200 || r.FanoutDirect.Rate <= 0 || r.FanoutProxy.Rate <= 0 || r.CastCost.Ops != 10 {
			t.Errorf("round %+v: want a flood of 200, fanout rates and 10 casts costed", r)
		}
	}
}

// Rows checks each target on the right figure: the median of the
// per-round ratios, the median, or the worst round; a row with no figure
// (or no baseline) is not measured and says why.
func TestRows(t *testing.T) {
	round := func(relayP50, rawP50 time.Duration, lost int, allocs float64) Round {
		return Round{
			CallLatency: Latency{P50: relayP50, P99: 2 * relayP50}, RawLatency: Latency{P50: rawP50, P99: 2 * rawP50},
			Pipelined: Throughput{Rate: 100}, RawPipelined: Throughput{Rate: 100}, RoutedPipelined: Throughput{Rate: 60},
			Casts: CastResult{Rate: 50}, RawPushPull: Throughput{Rate: 100},
			Flood:         FloodResult{N: 10, Lost: lost},
			InprocLatency: Latency{P50: 10 * time.Microsecond},
			CallCost:      Cost{Ops: 1, Cgo: 4, Allocs: allocs},
			IdleNode:      Memory{Count: 10, HeapBytes: 1 << 20},
			PendingCall:   Memory{Count: 10, HeapBytes: 2000},
		}
	}
	rounds := []Round{
		round(120*time.Microsecond, 100*time.Microsecond, 0, 10),
		round(300*time.Microsecond, 100*time.Microsecond, 3, 20), // the noisy round
		round(110*time.Microsecond, 100*time.Microsecond, 0, 12),
	}
	cfg := Config{Rounds: 3, Flood: 10, Pending: 10, Concurrency: 32}
	want := map[string]string{
		"call_p50": Met, "callers": Met, "casts": NotMet, "flood_lost": NotMet, "notify_proxy": NotMeasured,
		"routed": NotMet, "inproc_p50": NotMeasured, "call_cgo": Met, "call_allocs": Met, "idle_heap": Met, "pending_heap": NotMet,
	}
	for _, row := range Rows(cfg, rounds) {
		if row.Verdict != want[row.Key] {
			t.Errorf("%s: verdict %q (got %v), want %q", row.Key, row.Verdict, row.Got, want[row.Key])
		}
		if row.Verdict == NotMeasured && row.Note == "" {
			t.Errorf("%s: not measured, and no note says why", row.Key)
		}
	}
	rows := Rows(cfg, rounds)
	if r := rows[0]; r.Ratio.Median != 1.2 || r.Ratio.Min != 1.1 || r.Ratio.Max != 3 || r.Relay.Median != 120 || r.Baseline.Median != 100 {
		t.Errorf("call p50 row %+v %+v %+v: want ratio median 1.2 (1.1-3), relay 120 µs, raw 100 µs", r.Relay, r.Baseline, r.Ratio)
	}
	if r := rows[4]; r.Got != 3 {
		t.Errorf("flood row checked %v, want the worst round's 3", r.Got)
	}
	if r := rows[7]; !strings.Contains(r.Note, PeersGRPCCommand) {
		t.Errorf("gRPC row note %q, want the peers command", r.Note)
	}
	cfg.GRPCP50 = 5 * time.Microsecond
	if r := Rows(cfg, rounds)[7]; r.Verdict != NotMet || r.Got != 2 {
		t.Errorf("gRPC row with --grpc-p50 5us: %s, got %v; want not met, 2", r.Verdict, r.Got)
	}
	if got := (Report{Rows: rows}).Missed(); len(got) != 4 {
		t.Errorf("Missed: %d rows, want 4", len(got))
	}
}

func TestSeries(t *testing.T) {
	for _, c := range []struct {
		in                []float64
		median, min, maxv float64
	}{
		{[]float64{3, 1, 2}, 2, 1, 3},
		{[]float64{4, 1, 2, 3}, 2.5, 1, 4},
		{[]float64{7}, 7, 7, 7},
		{nil, 0, 0, 0},
	} {
		s := newSeries(c.in)
		if s.Median != c.median || s.Min != c.min || s.Max != c.maxv {
			t.Errorf("newSeries(%v) = %+v, want median %v min %v max %v", c.in, s, c.median, c.min, c.maxv)
		}
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
	if _, err := Flood(ctx, 0, 100); err == nil {
		t.Error("Flood(n=0): want error")
	}
	if _, err := PendingCallMemory(ctx, 0, 100); err == nil {
		t.Error("PendingCallMemory(m=0): want error")
	}
	if _, err := CallCost(ctx, 0, 0, 100); err == nil {
		t.Error("CallCost(n=0): want error")
	}
	cfg := DefaultConfig()
	cfg.Rounds = 0
	if _, err := Run(ctx, cfg, nil); err == nil {
		t.Error("Run(rounds=0): want error")
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

func TestConnections(t *testing.T) {
	defer goleak.VerifyNone(t)
	c, err := Connections(context.Background(), 8, 2)
	if err != nil {
		t.Fatal(err)
	}
	// 4 clients x 4 servers directly; 8 nodes x 2 proxies routed.
	if c.Direct != 16 || c.Routed != 16 {
		t.Errorf("connections %+v: want direct 16 (4 clients x 4 servers) and routed 16 (8 nodes x 2 proxies)", c)
	}
}
