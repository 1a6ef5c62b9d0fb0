package bench

import (
	"context"
	"fmt"

	"github.com/relay-dev/relay"
	"github.com/relay-dev/relay/curve"
)

// CurveRun is what one side of CurveCompare measured.
type CurveRun struct {
	Curve     bool       `json:"curve"`
	Latency   Latency    `json:"call_latency"`
	Pipelined Throughput `json:"pipelined_calls"`
	Casts     CastResult `json:"casts"`
	// Cost is what one sequential call costs in this process (client and
	// server both): cgo calls, allocations, hand-offs.
	Cost Cost `json:"cost_per_call"`
}

// CurveReport compares, in one run, relay with and without ZMTP CURVE on
// its sockets: the same measurements, one after the other.
type CurveReport struct {
	Config Config   `json:"config"`
	Plain  CurveRun `json:"plaintext"`
	Curve  CurveRun `json:"curve"`
}

// costCalls and costTraced size the cost measurement of CurveCompare.
const costCalls, costTraced = 2000, 200

// CurveCompare measures sequential call latency (cfg.N calls), pipelined
// calls (cfg.Calls from cfg.Concurrency callers), casts (cfg.Casts) and
// the cost of a call, first in plaintext and then with CURVE (client and
// server share one key pair, which is on the allow-list: the handshake
// and every message are encrypted and authenticated as in a secured
// cluster).
func CurveCompare(ctx context.Context, cfg Config, step func(string)) (CurveReport, error) {
	rep := CurveReport{Config: cfg}
	kp, err := curve.Generate()
	if err != nil {
		return rep, err
	}
	keys := relay.WithCurveKeys(kp, curve.NewAllowList(map[curve.Key]string{kp.Public: "bench"}))
	for _, run := range []struct {
		out  *CurveRun
		opts []relay.Option
		name string
	}{{&rep.Plain, nil, "plaintext"}, {&rep.Curve, []relay.Option{keys}, "curve"}} {
		r := run.out
		r.Curve = run.opts != nil
		step(run.name + ": call latency")
		if r.Latency, err = callLatency(ctx, mode{both: run.opts}, cfg.N, cfg.Size); err != nil {
			return rep, err
		}
		step(run.name + ": pipelined calls")
		if r.Pipelined, err = pipelinedCalls(ctx, mode{both: run.opts}, cfg.Concurrency, cfg.Calls, cfg.Size); err != nil {
			return rep, err
		}
		step(run.name + ": casts")
		if r.Casts, err = casts(ctx, cfg.Casts, cfg.Size, run.opts...); err != nil {
			return rep, err
		}
		step(run.name + ": cost of a call")
		if r.Cost, err = callCost(ctx, cfg.Size, run.opts...); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// callCost measures what one sequential call costs (MeasureCost).
func callCost(ctx context.Context, size int, extra ...relay.Option) (c Cost, err error) {
	p, payload, err := warmPair(ctx, mode{both: extra}, size)
	if err != nil {
		return Cost{}, err
	}
	defer p.close(&err)
	var out []byte
	c, err = MeasureCost(costCalls, costTraced, func() error {
		if err := p.client.Call(ctx, target, "echo", payload, &out); err != nil {
			return fmt.Errorf("bench: call cost: %w (%s)", err, p.stats())
		}
		return nil
	})
	return c, err
}
