package bench

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/relay-dev/relay"
	"github.com/relay-dev/relay/proxy"
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
func oneToMany(ctx context.Context, viaProxy bool, receivers int, setup func(i int, n *relay.Node, count func(warmUp bool)) error,
	publish func(ctx context.Context, pub *relay.Node, i int) error, n int) (res OneToMany, err error) {
	res = OneToMany{Mode: "direct", Receivers: receivers, N: n}
	mm := "memory://bench-fan-" + randomHex()
	opts := []relay.Option{relay.WithMatchmaker(mm)}
	if viaProxy {
		res.Mode = "proxy"
		p, err := proxy.StartPublisher(ctx, proxy.WithMatchmaker(mm), proxy.WithAck(true))
		if err != nil {
			return res, err
		}
		defer p.Close()
		opts = append(opts, relay.WithPubSub(true))
	}
	// Warm-up messages are counted apart, so none of them can be taken
	// for a measured one.
	var delivered, warmed, last atomic.Int64
	want := int64(n * receivers)
	all := make(chan struct{}) // closed when every measured delivery arrived
	count := func(warmUp bool) {
		if warmUp {
			warmed.Add(1)
			return
		}
		last.Store(time.Now().UnixNano())
		if delivered.Add(1) == want {
			close(all)
		}
	}
	for i := 0; i < receivers; i++ {
		node, err := relay.Start(ctx, append(opts, relay.WithHost(fmt.Sprintf("recv-%d", i)))...)
		if err != nil {
			return res, err
		}
		defer node.Close()
		if err := setup(i, node, count); err != nil {
			return res, err
		}
	}
	// The publisher waits for room when a receiver's send queue is full
	// (the default queue, 8192, is less than n fanouts): the rate counts
	// that wait, and no publish fails half-way through its receivers.
	pub, err := relay.Start(ctx, append(opts, relay.WithHost("publisher"), relay.WithWaitOnFull(true))...)
	if err != nil {
		return res, err
	}
	defer pub.Close()
	// Warm up until every receiver gets messages (PUB/SUB subscriptions
	// take a moment to reach the proxy).
	deadline := time.Now().Add(10 * time.Second)
	for warmed.Load() < int64(receivers) {
		if time.Now().After(deadline) {
			return res, fmt.Errorf("receivers not all reached during warm-up (%d deliveries)", warmed.Load())
		}
		if err := publish(ctx, pub, -1); err != nil {
			return res, err
		}
		time.Sleep(10 * time.Millisecond) // pacing the warm-up publishes
	}
	start := time.Now()
	for i := 0; i < n; i++ {
		if err := publish(ctx, pub, i); err != nil {
			return res, err
		}
	}
	select {
	case <-all:
	case <-ctx.Done():
	case <-time.After(time.Minute):
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
	return oneToMany(ctx, proxy, receivers, func(_ int, node *relay.Node, count func(bool)) error {
		s, err := node.Serve(relay.Target{Topic: "fan"})
		if err != nil {
			return err
		}
		s.Handle("event", func(context.Context, *relay.Request) (any, error) { count(false); return nil, nil })
		s.Handle("warmup", func(context.Context, *relay.Request) (any, error) { count(true); return nil, nil })
		return nil
	}, func(ctx context.Context, pub *relay.Node, i int) error {
		method := "event"
		if i < 0 {
			method = "warmup"
		}
		return pub.Cast(ctx, relay.Target{Topic: "fan", Fanout: true}, method, payload)
	}, n)
}

// Notify measures notifications of size bytes to one listener.
func Notify(ctx context.Context, proxy bool, n, size int) (OneToMany, error) {
	payload := make([]byte, size)
	return oneToMany(ctx, proxy, 1, func(_ int, node *relay.Node, count func(bool)) error {
		_, err := node.Listen([]string{"bench"}, "", func(_ context.Context, d *relay.Delivery) error {
			count(d.EventType == "warmup")
			return nil
		})
		return err
	}, func(ctx context.Context, pub *relay.Node, i int) error {
		event := "sample"
		if i < 0 {
			event = "warmup"
		}
		return pub.Notify(ctx, relay.Notification{Topic: "bench", EventType: event, Payload: payload})
	}, n)
}
