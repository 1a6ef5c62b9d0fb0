package relay_test

import (
	"context"
	"testing"

	"github.com/relay-dev/relay"
	"github.com/relay-dev/relay/internal/bench"
)

// TestCallCost logs what one call costs (hand-offs, cgo calls,
// allocations; internal/bench.MeasureCost) with no interceptor and no
// header, which must stay what it was before interceptors, headers and
// cancellation existed, and with each of them. It asserts nothing about
// speed: run it with -v to read the figures.
func TestCallCost(t *testing.T) {
	mm := newMatchmaker(t)
	srv := newNode(t, mm, "server")
	s, err := srv.Serve(compute)
	if err != nil {
		t.Fatal(err)
	}
	s.Handle("echo", func(_ context.Context, r *relay.Request) (any, error) {
		var b []byte
		return b, r.Decode(&b)
	})
	client := newNode(t, mm, "client")
	payload := make([]byte, 100)
	measure := func(name string, ctx context.Context, c *relay.Node) {
		var out []byte
		op := func() error { return c.Call(ctx, compute, "echo", payload, &out) }
		for range 200 {
			if err := op(); err != nil {
				t.Fatal(err)
			}
		}
		cost, err := bench.MeasureCost(2000, 200, op)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%-28s hand-offs %.2f  netpoll %.2f  cgo %.2f  allocs %.2f  bytes %.0f",
			name, cost.Handoffs, cost.Netpoll, cost.Cgo, cost.Allocs, cost.Bytes)
	}
	measure("plain", context.Background(), client)
	measure("one header", relay.WithHeader(context.Background(), "tenant", "t1"), client)
	pass := func(ctx context.Context, info *relay.CallInfo, args, reply any, next relay.Invoker) error {
		return next(ctx, info, args, reply)
	}
	intercepted := newNode(t, mm, "intercepted", relay.WithClientInterceptor(pass))
	measure("client interceptor", context.Background(), intercepted)
}
