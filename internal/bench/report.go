package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/relay-dev/relay/sockets"
)

// The targets of the performance issue.
const (
	// TargetLatencyRatio: relay's call p50 at most this many times raw
	// libzmq's DEALER/ROUTER round trip p50.
	TargetLatencyRatio = 1.3
	// TargetPipelined: relay's pipelined calls per second, at least.
	TargetPipelined = 150_000
	// TargetCastRatio: relay's casts per second at least this fraction of
	// raw PUSH/PULL's messages per second.
	TargetCastRatio = 0.5
)

// Config is what Run measures.
type Config struct {
	N           int  `json:"n"`            // sequential calls (and raw round trips) for latency
	Calls       int  `json:"calls"`        // pipelined calls (and raw pipelined round trips)
	Concurrency int  `json:"concurrency"`  // callers (requests) in flight when pipelined
	Casts       int  `json:"casts"`        // casts (and raw PUSH/PULL messages)
	Fanouts     int  `json:"fanouts"`      // fanouts to 10 subscribers, and notifications, per mode
	RouterProxy bool `json:"router_proxy"` // also calls through a router proxy, and connection counts
	Size        int  `json:"size"`         // payload bytes
}

// DefaultConfig is `node bench`'s default.
func DefaultConfig() Config {
	return Config{N: 20_000, Calls: 100_000, Concurrency: 32, Casts: 200_000, Fanouts: 5_000, Size: 100}
}

// Report holds one run of every measurement.
type Report struct {
	Config         Config     `json:"config"`
	RelayLatency   Latency    `json:"relay_call_latency"`
	RawLatency     Latency    `json:"raw_round_trip_latency"`
	RelayPipelined Throughput `json:"relay_pipelined_calls"`
	RawPipelined   Throughput `json:"raw_pipelined_round_trips"`
	RelayCasts     CastResult `json:"relay_casts"`
	RawPushPull    Throughput `json:"raw_push_pull"`
	FanoutDirect   OneToMany  `json:"fanout_direct"`
	FanoutProxy    OneToMany  `json:"fanout_proxy"`
	NotifyDirect   OneToMany  `json:"notify_direct"`
	NotifyProxy    OneToMany  `json:"notify_proxy"`
	RoutedLatency  Latency    `json:"routed_call_latency,omitempty"`
	RoutedPipeline Throughput `json:"routed_pipelined_calls,omitempty"`
	Conns          ConnCount  `json:"connections,omitempty"`
}

// ConnNodes and ConnProxies size the connection count: N nodes, k proxies.
const (
	ConnNodes   = 20
	ConnProxies = 3
)

// FanoutSubscribers is how many servers the fanout measurement reaches.
const FanoutSubscribers = 10

// LatencyRatio is relay's call p50 over raw's round-trip p50.
func (r Report) LatencyRatio() float64 {
	return ratio(float64(r.RelayLatency.P50), float64(r.RawLatency.P50))
}

// PipelinedRatio is relay's pipelined calls/s over raw's round trips/s.
func (r Report) PipelinedRatio() float64 { return ratio(r.RelayPipelined.Rate, r.RawPipelined.Rate) }

// CastRatio is relay's casts/s over raw PUSH/PULL's msgs/s.
func (r Report) CastRatio() float64 { return ratio(r.RelayCasts.Rate, r.RawPushPull.Rate) }

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// Check is one target and whether the run met it.
type Check struct {
	Name string  `json:"name"`
	Want string  `json:"want"`
	Got  float64 `json:"got"`
	Met  bool    `json:"met"`
}

// Targets checks the run against the targets.
func (r Report) Targets() []Check {
	lr, cr := r.LatencyRatio(), r.CastRatio()
	return []Check{
		{Name: "call p50 / raw round-trip p50", Want: fmt.Sprintf("<= %.1fx", TargetLatencyRatio),
			Got: lr, Met: lr > 0 && lr <= TargetLatencyRatio},
		{Name: "pipelined calls/s", Want: fmt.Sprintf(">= %d", TargetPipelined),
			Got: r.RelayPipelined.Rate, Met: r.RelayPipelined.Rate >= TargetPipelined},
		{Name: "casts/s / raw push-pull msgs/s", Want: fmt.Sprintf(">= %.0f%%", TargetCastRatio*100),
			Got: cr, Met: cr >= TargetCastRatio && r.RelayCasts.Complete},
	}
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

// Run runs every measurement of cfg, one after the other, relay's then
// raw's for each pattern. step, if not nil, is told what starts next.
func Run(ctx context.Context, cfg Config, step func(string)) (Report, error) {
	if step == nil {
		step = func(string) {}
	}
	r := Report{Config: cfg}
	var err error
	steps := []struct {
		what string
		run  func() error
	}{
		{fmt.Sprintf("relay call latency: %d sequential calls of %d B", cfg.N, cfg.Size), func() error {
			r.RelayLatency, err = CallLatency(ctx, cfg.N, cfg.Size)
			return err
		}},
		{fmt.Sprintf("raw round-trip latency: %d DEALER/ROUTER round trips of %d B", cfg.N, cfg.Size), func() error {
			r.RawLatency, err = RawLatency(ctx, cfg.N, cfg.Size)
			return err
		}},
		{fmt.Sprintf("relay pipelined calls: %d calls from %d callers", cfg.Calls, cfg.Concurrency), func() error {
			r.RelayPipelined, err = PipelinedCalls(ctx, cfg.Concurrency, cfg.Calls, cfg.Size)
			return err
		}},
		{fmt.Sprintf("raw pipelined round trips: %d with %d in flight", cfg.Calls, cfg.Concurrency), func() error {
			r.RawPipelined, err = RawPipelined(ctx, cfg.Concurrency, cfg.Calls, cfg.Size)
			return err
		}},
		{fmt.Sprintf("relay casts: %d casts", cfg.Casts), func() error {
			r.RelayCasts, err = Casts(ctx, cfg.Casts, cfg.Size)
			return err
		}},
		{fmt.Sprintf("raw push/pull: %d messages", cfg.Casts), func() error {
			r.RawPushPull, err = RawPushPull(ctx, cfg.Casts, cfg.Size)
			return err
		}},
	}
	if cfg.Fanouts > 0 {
		for _, proxy := range []bool{false, true} {
			mode := map[bool]string{false: "direct", true: "through a publisher proxy (acks on)"}[proxy]
			steps = append(steps, struct {
				what string
				run  func() error
			}{fmt.Sprintf("fanout %s: %d fanouts to %d servers", mode, cfg.Fanouts, FanoutSubscribers), func() error {
				res, err := Fanout(ctx, proxy, FanoutSubscribers, cfg.Fanouts, cfg.Size)
				if proxy {
					r.FanoutProxy = res
				} else {
					r.FanoutDirect = res
				}
				return err
			}}, struct {
				what string
				run  func() error
			}{fmt.Sprintf("notify %s: %d notifications", mode, cfg.Fanouts), func() error {
				res, err := Notify(ctx, proxy, cfg.Fanouts, cfg.Size)
				if proxy {
					r.NotifyProxy = res
				} else {
					r.NotifyDirect = res
				}
				return err
			}})
		}
	}
	if cfg.RouterProxy {
		steps = append(steps, struct {
			what string
			run  func() error
		}{fmt.Sprintf("relay call latency through a router proxy: %d calls", cfg.N), func() error {
			r.RoutedLatency, err = RoutedCallLatency(ctx, cfg.N, cfg.Size)
			return err
		}}, struct {
			what string
			run  func() error
		}{fmt.Sprintf("relay pipelined calls through a router proxy: %d calls from %d callers", cfg.Calls, cfg.Concurrency), func() error {
			r.RoutedPipeline, err = RoutedPipelinedCalls(ctx, cfg.Concurrency, cfg.Calls, cfg.Size)
			return err
		}}, struct {
			what string
			run  func() error
		}{fmt.Sprintf("TCP connections of %d nodes, direct and through %d router proxies", ConnNodes, ConnProxies), func() error {
			r.Conns, err = Connections(ctx, ConnNodes, ConnProxies)
			return err
		}})
	}
	for _, s := range steps {
		step(s.what)
		start := time.Now()
		if err := s.run(); err != nil {
			return r, fmt.Errorf("bench: %s: %w", s.what, err)
		}
		step(fmt.Sprintf("  done in %v", time.Since(start).Round(time.Millisecond)))
	}
	return r, nil
}
