package bench

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/relay-dev/relay/internal/proc"
	"github.com/relay-dev/relay/sockets"
)

// Config is what Run measures.
type Config struct {
	Rounds      int           `json:"rounds"`       // rounds; each measures every row, relay then its baseline
	N           int           `json:"n"`            // sequential calls (and raw round trips) for latency; N/10 calls for the cost
	Calls       int           `json:"calls"`        // pipelined calls (and raw pipelined round trips), direct and through a router proxy
	Concurrency int           `json:"concurrency"`  // callers (requests) in flight when pipelined
	Casts       int           `json:"casts"`        // casts (and raw PUSH/PULL messages); Casts/10 for the cost
	Flood       int           `json:"flood"`        // casts of the flood, not retried
	Pending     int           `json:"pending"`      // calls in flight for the heap per pending call
	Fanouts     int           `json:"fanouts"`      // fanouts to 10 servers, and notifications, per mode; 0 skips them
	GRPCP50     time.Duration `json:"grpc_p50_ns"`  // gRPC unary p50 from ../shared/peers; 0: not given
	RouterProxy bool          `json:"router_proxy"` // also call latency through a router proxy, and connection counts
	Size        int           `json:"size"`         // payload bytes
}

// DefaultConfig is `node bench`'s default: about a minute on 2 cores.
func DefaultConfig() Config {
	return Config{Rounds: 3, N: 20_000, Calls: 100_000, Concurrency: 32, Casts: 200_000, Flood: 600_000,
		Pending: 10_000, Fanouts: 20_000, Size: 100}
}

func (c Config) validate() error {
	switch {
	case c.Rounds < 1:
		return fmt.Errorf("bench: rounds must be at least 1, got %d", c.Rounds)
	case c.N < 1 || c.Calls < 1 || c.Concurrency < 1 || c.Flood < 1 || c.Pending < 1:
		return fmt.Errorf("bench: n, calls, concurrency, flood and pending must be at least 1, got %d, %d, %d, %d, %d",
			c.N, c.Calls, c.Concurrency, c.Flood, c.Pending)
	case c.Casts < 2:
		return fmt.Errorf("bench: casts must be at least 2, got %d", c.Casts)
	case c.Fanouts < 0 || c.Size < 0 || c.GRPCP50 < 0:
		return fmt.Errorf("bench: fanouts, size and grpc-p50 must not be negative")
	}
	return nil
}

// Machine describes where the run ran. The load averages (1, 5 and 15
// minutes, from /proc/loadavg) say how busy the machine was.
type Machine struct {
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	Go         string `json:"go"`
	LoadStart  string `json:"load_start"`
	LoadEnd    string `json:"load_end"`
}

// Round holds every measurement of one round. A field a round did not
// measure is zero.
type Round struct {
	CallLatency     Latency     `json:"call_latency"`
	RawLatency      Latency     `json:"raw_round_trip_latency"`
	Pipelined       Throughput  `json:"pipelined_calls"`
	RawPipelined    Throughput  `json:"raw_pipelined_round_trips"`
	RoutedPipelined Throughput  `json:"routed_pipelined_calls"`
	Casts           CastResult  `json:"casts"`
	RawPushPull     Throughput  `json:"raw_push_pull"`
	Flood           FloodResult `json:"flood"`
	NotifyProxy     OneToMany   `json:"notify_proxy"`
	NotifyDirect    OneToMany   `json:"notify_direct"`
	FanoutProxy     OneToMany   `json:"fanout_proxy"`
	FanoutDirect    OneToMany   `json:"fanout_direct"`
	InprocLatency   Latency     `json:"inproc_call_latency"`
	CallCost        Cost        `json:"call_cost"`
	CastCost        Cost        `json:"cast_cost"`
	IdleNode        Memory      `json:"idle_node_memory"`
	PendingCall     Memory      `json:"pending_call_memory"`
	RoutedLatency   Latency     `json:"routed_call_latency"` // --router-proxy only
}

// Report holds one run: its rows (medians, ratios, targets, verdicts) and
// every round's measurements.
type Report struct {
	Config  Config        `json:"config"`
	Machine Machine       `json:"machine"`
	Rows    []Row         `json:"rows"`
	Rounds  []Round       `json:"rounds"`
	Conns   ConnCount     `json:"connections,omitzero"` // --router-proxy only
	Elapsed time.Duration `json:"elapsed_ns"`
}

// Missed returns the rows whose target was not met.
func (r Report) Missed() []Row {
	var out []Row
	for _, row := range r.Rows {
		if row.Verdict == NotMet {
			out = append(out, row)
		}
	}
	return out
}

// Median is the median over rounds of what f reads from a round (for the
// detail tables).
func (r Report) Median(f func(Round) float64) float64 {
	v := make([]float64, len(r.Rounds))
	for i, rd := range r.Rounds {
		v[i] = f(rd)
	}
	return newSeries(v).Median
}

// RawLatency measures raw libzmq's DEALER/ROUTER round trip (see
// sockets.RawRoundTrip).
func RawLatency(ctx context.Context, n, size int) (Latency, error) {
	r, err := sockets.RawRoundTrip(ctx, n, size)
	if err != nil {
		return Latency{}, err
	}
	return Latency{N: r.N, P50: r.P50, P99: r.P99, Mean: r.Mean}, nil
}

// RawPipelined measures raw libzmq's pipelined round trips (see
// sockets.RawPipelined).
func RawPipelined(ctx context.Context, concurrency, n, size int) (Throughput, error) {
	rate, err := sockets.RawPipelined(ctx, concurrency, n, size)
	if err != nil {
		return Throughput{}, err
	}
	return Throughput{N: n, Concurrency: min(concurrency, n), Rate: rate}, nil
}

// RawPushPull measures raw libzmq's PUSH/PULL rate at the receiver (see
// sockets.RawPushPull).
func RawPushPull(ctx context.Context, n, size int) (Throughput, error) {
	rate, err := sockets.RawPushPull(ctx, n, size)
	if err != nil {
		return Throughput{}, err
	}
	return Throughput{N: n, Rate: rate}, nil
}

// ConnNodes and ConnProxies size the connection count: N nodes, k proxies.
const (
	ConnNodes   = 20
	ConnProxies = 3
)

// FanoutSubscribers is how many servers the fanout measurement reaches.
const FanoutSubscribers = 10

// step is one measurement of a round.
type step struct {
	what string
	run  func() error
}

// roundSteps lists the measurements of one round into rd, in order: each
// relay measurement is followed at once by its baseline's.
func roundSteps(ctx context.Context, cfg Config, rd *Round) []step {
	steps := rowSteps(ctx, cfg, rd)
	if cfg.Fanouts > 0 {
		steps = append(steps, oneToManySteps(ctx, cfg, rd)...)
	}
	steps = append(steps, costSteps(ctx, cfg, rd)...)
	if cfg.RouterProxy {
		s := cfg.Size
		steps = append(steps,
			measure(fmt.Sprintf("router proxy: %d sequential calls through a router proxy", cfg.N), &rd.RoutedLatency, func() (Latency, error) {
				return RoutedCallLatency(ctx, cfg.N, s)
			}),
		)
	}
	return steps
}

// measure is the step what, which stores what f measures (also when it
// fails) in *into.
func measure[T any](what string, into *T, f func() (T, error)) step {
	return step{what, func() error {
		var err error
		*into, err = f()
		return err
	}}
}

// rowSteps are the measurements of rows 1 to 4 and 6.
func rowSteps(ctx context.Context, cfg Config, rd *Round) []step {
	s := cfg.Size
	return []step{
		measure(fmt.Sprintf("row 1, relay: %d sequential calls of %d B", cfg.N, s), &rd.CallLatency, func() (Latency, error) {
			return CallLatency(ctx, cfg.N, s)
		}),
		measure(fmt.Sprintf("row 1, raw: %d DEALER→ROUTER round trips", cfg.N), &rd.RawLatency, func() (Latency, error) {
			return RawLatency(ctx, cfg.N, s)
		}),
		measure(fmt.Sprintf("row 2, relay: %d calls from %d callers", cfg.Calls, cfg.Concurrency), &rd.Pipelined, func() (Throughput, error) {
			return PipelinedCalls(ctx, cfg.Concurrency, cfg.Calls, s)
		}),
		measure(fmt.Sprintf("row 2, raw: %d round trips, one DEALER, %d in flight", cfg.Calls, cfg.Concurrency), &rd.RawPipelined, func() (Throughput, error) {
			return RawPipelined(ctx, cfg.Concurrency, cfg.Calls, s)
		}),
		measure(fmt.Sprintf("row 6, relay: %d calls from %d callers through a router proxy", cfg.Calls, cfg.Concurrency), &rd.RoutedPipelined, func() (Throughput, error) {
			return RoutedPipelinedCalls(ctx, cfg.Concurrency, cfg.Calls, s)
		}),
		measure(fmt.Sprintf("row 3, relay: %d casts", cfg.Casts), &rd.Casts, func() (CastResult, error) {
			return Casts(ctx, cfg.Casts, s)
		}),
		measure(fmt.Sprintf("row 3, raw: %d PUSH→PULL messages", cfg.Casts), &rd.RawPushPull, func() (Throughput, error) {
			return RawPushPull(ctx, cfg.Casts, s)
		}),
		measure(fmt.Sprintf("row 4, relay: flood of %d casts, no retry", cfg.Flood), &rd.Flood, func() (FloodResult, error) {
			return Flood(ctx, cfg.Flood, s)
		}),
	}
}

// oneToManySteps are the measurements of notifications (row 5) and
// fanouts, direct and through a publisher proxy.
func oneToManySteps(ctx context.Context, cfg Config, rd *Round) []step {
	s := cfg.Size
	return []step{
		measure(fmt.Sprintf("row 5, relay: %d notifications through a publisher proxy (acks)", cfg.Fanouts), &rd.NotifyProxy, func() (OneToMany, error) {
			return Notify(ctx, true, cfg.Fanouts, s)
		}),
		measure(fmt.Sprintf("row 5, direct: %d notifications", cfg.Fanouts), &rd.NotifyDirect, func() (OneToMany, error) {
			return Notify(ctx, false, cfg.Fanouts, s)
		}),
		measure(fmt.Sprintf("one-to-many: %d fanouts to %d servers through a publisher proxy (acks)", cfg.Fanouts, FanoutSubscribers), &rd.FanoutProxy, func() (OneToMany, error) {
			return Fanout(ctx, true, FanoutSubscribers, cfg.Fanouts, s)
		}),
		measure(fmt.Sprintf("one-to-many: %d fanouts to %d servers direct", cfg.Fanouts, FanoutSubscribers), &rd.FanoutDirect, func() (OneToMany, error) {
			return Fanout(ctx, false, FanoutSubscribers, cfg.Fanouts, s)
		}),
	}
}

// costSteps are the measurements of rows 7 to 9.
func costSteps(ctx context.Context, cfg Config, rd *Round) []step {
	s := cfg.Size
	callCost, castCost := max(cfg.N/10, 1), max(cfg.Casts/10, 1)
	return []step{
		measure(fmt.Sprintf("row 7, relay: %d sequential calls between two WithInproc nodes", cfg.N), &rd.InprocLatency, func() (Latency, error) {
			return InprocCallLatency(ctx, cfg.N, s)
		}),
		measure(fmt.Sprintf("row 8, relay: cost of %d sequential calls (%d traced)", callCost, max(callCost/10, 1)), &rd.CallCost, func() (Cost, error) {
			return CallCost(ctx, callCost, max(callCost/10, 1), s)
		}),
		measure(fmt.Sprintf("row 8, relay: cost of %d casts until handled (%d traced)", castCost, max(castCost/10, 1)), &rd.CastCost, func() (Cost, error) {
			return CastCost(ctx, castCost, max(castCost/10, 1), s)
		}),
		measure(fmt.Sprintf("row 9, relay: heap of %d idle nodes", IdleNodes), &rd.IdleNode, func() (Memory, error) {
			return IdleNodeMemory(ctx)
		}),
		measure(fmt.Sprintf("row 9, relay: heap of %d pending calls", cfg.Pending), &rd.PendingCall, func() (Memory, error) {
			return PendingCallMemory(ctx, cfg.Pending, s)
		}),
	}
}

// Run runs cfg.Rounds rounds of every measurement, relay's then its
// baseline's for each row, so that the machine's noise hits both, and
// reads the rows from them. step, if not nil, is told what starts and how
// long it took.
func Run(ctx context.Context, cfg Config, step func(string)) (Report, error) {
	if step == nil {
		step = func(string) {}
	}
	if err := cfg.validate(); err != nil {
		return Report{}, err
	}
	start := time.Now()
	r := Report{Config: cfg, Machine: Machine{OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0), Go: runtime.Version(), LoadStart: proc.LoadAverage()}}
	do := func(what string, run func() error) error {
		step(what)
		t := time.Now()
		if err := run(); err != nil {
			return fmt.Errorf("bench: %s: %w", what, err)
		}
		step(fmt.Sprintf("  done in %v", time.Since(t).Round(time.Millisecond)))
		return nil
	}
	for i := 1; i <= cfg.Rounds; i++ {
		var rd Round
		for _, s := range roundSteps(ctx, cfg, &rd) {
			if err := do(fmt.Sprintf("round %d/%d, %s", i, cfg.Rounds, s.what), s.run); err != nil {
				return r, err
			}
		}
		r.Rounds = append(r.Rounds, rd)
	}
	if cfg.RouterProxy {
		err := do(fmt.Sprintf("TCP connections of %d nodes, direct and through %d router proxies", ConnNodes, ConnProxies), func() error {
			var err error
			r.Conns, err = Connections(ctx, ConnNodes, ConnProxies)
			return err
		})
		if err != nil {
			return r, err
		}
	}
	r.Machine.LoadEnd = proc.LoadAverage()
	r.Rows = Rows(cfg, r.Rounds)
	r.Elapsed = time.Since(start)
	return r, nil
}
