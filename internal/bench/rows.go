package bench

import (
	"fmt"
	"sort"
	"time"
)

// The targets of the performance issue (issue 8), checked in Rows.
const (
	TargetCallP50Ratio   = 1.3     // relay call p50 / raw DEALER→ROUTER round trip p50, at most
	TargetCallersRatio   = 1.0     // relay calls/s with Concurrency callers / raw one DEALER, at least
	TargetCastRatio      = 1.0     // relay casts/s at the receiver / raw PUSH→PULL, at least
	TargetFloodLost      = 0       // casts accepted with nil but never handled, in every round
	TargetNotifyRatio    = 0.5     // notify through a publisher proxy with acks / direct, at least
	TargetRoutedRatio    = 0.7     // pipelined calls through one router proxy / direct, at least
	TargetInprocRatio    = 1.0     // same-process call p50 / gRPC unary p50, at most
	TargetCgoPerCall     = 12      // cgo calls per call round trip, at most
	TargetAllocsPerCall  = 15      // heap allocations per call, at most
	TargetIdleNodeHeap   = 4 << 20 // heap bytes per idle node, at most
	TargetPendingHeap    = 1 << 10 // heap bytes per pending call (client + server), at most
	PeersGRPCCommand     = "cd ../shared/peers && go run . -only grpc"
	targetCheckedRatio   = "median of the per-round ratios"
	targetCheckedMedian  = "median over rounds"
	targetCheckedWorst   = "worst round"
	notMeasuredNoFanouts = "not measured: --fanouts 0"
)

// Verdicts of a row with a target.
const (
	Met         = "met"
	NotMet      = "not met"
	NotMeasured = "not measured"
)

// Series is one figure of every round, and its median, min and max. A
// round that did not measure the figure has no entry.
type Series struct {
	Rounds []float64 `json:"rounds"`
	Median float64   `json:"median"`
	Min    float64   `json:"min"`
	Max    float64   `json:"max"`
}

func newSeries(v []float64) Series {
	s := Series{Rounds: v}
	if len(v) == 0 {
		return s
	}
	sorted := append([]float64(nil), v...)
	sort.Float64s(sorted)
	n := len(sorted)
	s.Min, s.Max = sorted[0], sorted[n-1]
	if n%2 == 1 {
		s.Median = sorted[n/2]
	} else {
		s.Median = (sorted[n/2-1] + sorted[n/2]) / 2
	}
	return s
}

// Target is what a row's figure must be: Got Op Value.
type Target struct {
	Op    string  `json:"op"`    // "<=" or ">="
	Value float64 `json:"value"` // in the row's unit, or a ratio
	Of    string  `json:"of"`    // the figure checked: median of the per-round ratios, median, or worst round
}

func (t Target) met(got float64) bool {
	if t.Op == "<=" {
		return got <= t.Value
	}
	return got >= t.Value
}

// Row is one line of the report: relay's figure and, for a ratio row, its
// baseline's (both medians over rounds), the ratio (median of the
// per-round ratios, with their min and max), the target and the verdict.
// A row without a Target is printed for information.
type Row struct {
	No           string  `json:"no,omitempty"` // the row number; empty for a second line of a row
	Key          string  `json:"key"`
	Name         string  `json:"name"`
	Unit         string  `json:"unit"` // of Relay and Baseline: "µs", "/s", "casts", "calls", "allocs", "bytes"
	Relay        Series  `json:"relay"`
	BaselineName string  `json:"baseline_name,omitempty"`
	Baseline     *Series `json:"baseline,omitempty"`
	Ratio        *Series `json:"ratio,omitempty"` // relay / baseline, per round
	Target       *Target `json:"target,omitempty"`
	Want         string  `json:"want,omitempty"` // the target in words
	Got          float64 `json:"got"`            // the figure checked against the target
	Verdict      string  `json:"verdict,omitempty"`
	Note         string  `json:"note,omitempty"` // what was not measured, and how to measure it
}

// rowDef says how a row is read from the rounds. relay and base return
// false for a round that did not measure them.
type rowDef struct {
	no, key, name, unit string
	relay               func(Round) (float64, bool)
	baseName            string
	base                func(Round) (float64, bool)
	target              *Target
	want                string
	note                string // shown when the row was not measured
}

// micros returns d in µs, and whether it was measured.
func micros(d time.Duration) (float64, bool) { return float64(d) / float64(time.Microsecond), d > 0 }

// positive returns v, and whether it was measured.
func positive(v float64) (float64, bool) { return v, v > 0 }

// rowDefs lists the rows of a run of cfg, in the order.
func rowDefs(cfg Config) []rowDef {
	ratio := func(op string, v float64) *Target { return &Target{Op: op, Value: v, Of: targetCheckedRatio} }
	value := func(op string, v float64) *Target { return &Target{Op: op, Value: v, Of: targetCheckedMedian} }
	grpcNote := fmt.Sprintf("gRPC unary p50 not given: run `%s` and pass its p50 as --grpc-p50 (e.g. --grpc-p50 55us)", PeersGRPCCommand)
	return []rowDef{
		{key: "call_p50", no: "1", name: "call p50: relay / raw DEALER→ROUTER", unit: "µs",
			relay: func(r Round) (float64, bool) { return micros(r.CallLatency.P50) }, baseName: "raw DEALER→ROUTER round trip",
			base:   func(r Round) (float64, bool) { return micros(r.RawLatency.P50) },
			target: ratio("<=", TargetCallP50Ratio), want: fmt.Sprintf("≤ %.1f×", TargetCallP50Ratio)},
		{key: "call_p99", name: "call p99: relay / raw", unit: "µs",
			relay: func(r Round) (float64, bool) { return micros(r.CallLatency.P99) }, baseName: "raw DEALER→ROUTER round trip",
			base: func(r Round) (float64, bool) { return micros(r.RawLatency.P99) }},
		{key: "callers", no: "2", name: fmt.Sprintf("%d callers, calls/s: relay / raw 1 DEALER", cfg.Concurrency), unit: "/s",
			relay: func(r Round) (float64, bool) { return positive(r.Pipelined.Rate) }, baseName: fmt.Sprintf("raw one DEALER, %d in flight", cfg.Concurrency),
			base:   func(r Round) (float64, bool) { return positive(r.RawPipelined.Rate) },
			target: ratio(">=", TargetCallersRatio), want: fmt.Sprintf("≥ %.1f", TargetCallersRatio)},
		{key: "casts", no: "3", name: "casts/s at the receiver: relay / raw PUSH→PULL", unit: "/s",
			relay: func(r Round) (float64, bool) { return positive(r.Casts.Rate) }, baseName: "raw PUSH→PULL",
			base:   func(r Round) (float64, bool) { return positive(r.RawPushPull.Rate) },
			target: ratio(">=", TargetCastRatio), want: fmt.Sprintf("≥ %.1f", TargetCastRatio)},
		{key: "flood_lost", no: "4", name: fmt.Sprintf("flood of %d casts: accepted, not handled", cfg.Flood), unit: "casts",
			relay:  func(r Round) (float64, bool) { return float64(r.Flood.Lost), r.Flood.N > 0 },
			target: &Target{Op: "<=", Value: TargetFloodLost, Of: targetCheckedWorst}, want: "0 in every round"},
		{key: "notify_proxy", no: "5", name: "notify msgs/s: publisher proxy (acks) / direct", unit: "/s",
			relay: func(r Round) (float64, bool) { return positive(r.NotifyProxy.Rate) }, baseName: "direct notify",
			base:   func(r Round) (float64, bool) { return positive(r.NotifyDirect.Rate) },
			target: ratio(">=", TargetNotifyRatio), want: fmt.Sprintf("≥ %.1f", TargetNotifyRatio), note: notMeasuredNoFanouts},
		{key: "routed", no: "6", name: "pipelined calls/s: 1 router proxy / direct", unit: "/s",
			relay: func(r Round) (float64, bool) { return positive(r.RoutedPipelined.Rate) }, baseName: "direct (row 2's relay figure)",
			base:   func(r Round) (float64, bool) { return positive(r.Pipelined.Rate) },
			target: ratio(">=", TargetRoutedRatio), want: fmt.Sprintf("≥ %.1f", TargetRoutedRatio)},
		{key: "inproc_p50", no: "7", name: "same-process call p50: relay / gRPC unary", unit: "µs",
			relay: func(r Round) (float64, bool) { return micros(r.InprocLatency.P50) }, baseName: "gRPC unary p50 (--grpc-p50)",
			base:   func(Round) (float64, bool) { return micros(cfg.GRPCP50) },
			target: ratio("<=", TargetInprocRatio), want: fmt.Sprintf("≤ %.1f×", TargetInprocRatio), note: grpcNote},
		{key: "call_cgo", no: "8", name: "cgo calls per call", unit: "calls",
			relay:  func(r Round) (float64, bool) { return r.CallCost.Cgo, r.CallCost.Ops > 0 },
			target: value("<=", TargetCgoPerCall), want: fmt.Sprintf("≤ %d", TargetCgoPerCall)},
		{key: "call_allocs", name: "allocations per call", unit: "allocs",
			relay:  func(r Round) (float64, bool) { return r.CallCost.Allocs, r.CallCost.Ops > 0 },
			target: value("<=", TargetAllocsPerCall), want: fmt.Sprintf("≤ %d", TargetAllocsPerCall)},
		{key: "idle_heap", no: "9", name: fmt.Sprintf("heap per idle node (%d nodes)", IdleNodes), unit: "bytes",
			relay:  func(r Round) (float64, bool) { return r.IdleNode.HeapBytes, r.IdleNode.Count > 0 },
			target: value("<=", TargetIdleNodeHeap), want: "≤ 4 MiB"},
		{key: "pending_heap", name: fmt.Sprintf("heap per pending call (%d in flight)", cfg.Pending), unit: "bytes",
			relay:  func(r Round) (float64, bool) { return r.PendingCall.HeapBytes, r.PendingCall.Count > 0 },
			target: value("<=", TargetPendingHeap), want: "≤ 1 KiB"},
	}
}

// Rows reads the rows of a run of cfg from its rounds and checks each
// against its target.
func Rows(cfg Config, rounds []Round) []Row {
	defs := rowDefs(cfg)
	rows := make([]Row, 0, len(defs))
	for _, d := range defs {
		row := Row{No: d.no, Key: d.key, Name: d.name, Unit: d.unit, Target: d.target, Want: d.want}
		var relay, base, ratios []float64
		for _, r := range rounds {
			v, ok := d.relay(r)
			if ok {
				relay = append(relay, v)
			}
			if d.base == nil {
				continue
			}
			b, bok := d.base(r)
			if bok {
				base = append(base, b)
			}
			if ok && bok {
				ratios = append(ratios, v/b)
			}
		}
		row.Relay = newSeries(relay)
		if d.base != nil {
			row.BaselineName = d.baseName
			bs, rs := newSeries(base), newSeries(ratios)
			row.Baseline, row.Ratio = &bs, &rs
		}
		if d.target == nil {
			rows = append(rows, row)
			continue
		}
		measured := len(relay) > 0
		switch d.target.Of {
		case targetCheckedRatio:
			measured = len(ratios) > 0
			row.Got = row.Ratio.Median
		case targetCheckedWorst:
			if d.target.Op == "<=" {
				row.Got = row.Relay.Max
			} else {
				row.Got = row.Relay.Min
			}
		default:
			row.Got = row.Relay.Median
		}
		switch {
		case !measured:
			row.Verdict, row.Note = NotMeasured, d.note
		case d.target.met(row.Got):
			row.Verdict = Met
		default:
			row.Verdict = NotMet
		}
		rows = append(rows, row)
	}
	return rows
}
