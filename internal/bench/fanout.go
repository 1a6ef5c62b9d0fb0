package bench

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/relay-dev/relay"
)

// OneToMany is the result of a fanout or notify measurement: messages
// published per second, each one delivered to every receiver.
type OneToMany struct {
	Mode      string        `json:"mode"` // "direct" or "proxy"
	Receivers int           `json:"receivers"`
	N         int           `json:"n"`          // messages published
	Delivered int64         `json:"delivered"`  // deliveries counted (N × receivers when complete)
	Elapsed   time.Duration `json:"elapsed_ns"` // first publish to last delivery
	Rate      float64       `json:"per_second"` // messages published per second
}

// oneToMany starts `receivers` nodes and a publisher on one memory
// matchmaker, with a publisher proxy (acks on) in proxy mode.
func oneToMany(ctx context.Context, proxy bool, receivers int, setup func(i int, n *relay.Node, count func()) error,
	publish func(ctx context.Context, pub *relay.Node, i int) error, n int) (res OneToMany, err error) {
	res = OneToMany{Mode: "direct", Receivers: receivers, N: n}
	mm := "memory://bench-fan-" + randomHex()
	opts := []relay.Option{relay.WithMatchmaker(mm)}
	if proxy {
		res.Mode = "proxy"
		p, err := relay.StartPublisherProxy(ctx, relay.ProxyOptions{Matchmaker: mm, Ack: true})
		if err != nil {
			return res, err
		}
		defer p.Close()
		opts = append(opts, relay.WithPubSub(true))
	}
	var delivered atomic.Int64
	var last atomic.Int64
	for i := 0; i < receivers; i++ {
		node, err := relay.Start(ctx, append(opts, relay.WithHost(fmt.Sprintf("recv-%d", i)))...)
		if err != nil {
			return res, err
		}
		defer node.Close()
		count := func() {
			delivered.Add(1)
			last.Store(time.Now().UnixNano())
		}
		if err := setup(i, node, count); err != nil {
			return res, err
		}
	}
	pub, err := relay.Start(ctx, append(opts, relay.WithHost("publisher"))...)
	if err != nil {
		return res, err
	}
	defer pub.Close()
	// Warm up until every receiver gets messages (PUB/SUB subscriptions
	// take a moment to reach the proxy), then count from zero.
	deadline := time.Now().Add(10 * time.Second)
	for delivered.Load() < int64(receivers) {
		if time.Now().After(deadline) {
			return res, fmt.Errorf("receivers not all reached during warm-up (%d deliveries)", delivered.Load())
		}
		if err := publish(ctx, pub, -1); err != nil {
			return res, err
		}
		time.Sleep(10 * time.Millisecond) // pacing the warm-up, not synchronisation
	}
	time.Sleep(100 * time.Millisecond) // let warm-up messages land before counting
	delivered.Store(0)
	start := time.Now()
	for i := 0; i < n; i++ {
		if err := publish(ctx, pub, i); err != nil {
			return res, err
		}
	}
	want := int64(n * receivers)
	for delivered.Load() < want {
		if ctx.Err() != nil || time.Since(start) > time.Minute {
			break
		}
		time.Sleep(time.Millisecond) // waiting for deliveries, bounded
	}
	res.Delivered = delivered.Load()
	res.Elapsed = time.Duration(last.Load() - start.UnixNano())
	if res.Elapsed > 0 {
		res.Rate = float64(n) / res.Elapsed.Seconds()
	}
	if res.Delivered < want {
		return res, fmt.Errorf("%s: %d of %d deliveries arrived", res.Mode, res.Delivered, want)
	}
	return res, nil
}

// Fanout measures fanouts of size bytes to `receivers` servers of a topic.
func Fanout(ctx context.Context, proxy bool, receivers, n, size int) (OneToMany, error) {
	payload := make([]byte, size)
	return oneToMany(ctx, proxy, receivers, func(_ int, node *relay.Node, count func()) error {
		s, err := node.Serve(relay.Target{Topic: "fan"})
		if err != nil {
			return err
		}
		s.Handle("event", func(context.Context, *relay.Request) (any, error) { count(); return nil, nil })
		return nil
	}, func(ctx context.Context, pub *relay.Node, _ int) error {
		return pub.Cast(ctx, relay.Target{Topic: "fan", Fanout: true}, "event", payload)
	}, n)
}

// Notify measures notifications of size bytes to one listener.
func Notify(ctx context.Context, proxy bool, n, size int) (OneToMany, error) {
	payload := make([]byte, size)
	return oneToMany(ctx, proxy, 1, func(_ int, node *relay.Node, count func()) error {
		_, err := node.Listen([]string{"bench"}, "", func(context.Context, *relay.Delivery) error { count(); return nil })
		return err
	}, func(ctx context.Context, pub *relay.Node, _ int) error {
		return pub.Notify(ctx, relay.Notification{Topic: "bench", EventType: "sample", Payload: payload})
	}, n)
}
