package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relay-dev/relay"
	"github.com/relay-dev/relay/internal/latency"
	"github.com/relay-dev/relay/proxy"
)

const (
	// warmup calls run before a call measurement starts counting.
	warmup = 200
	// castStall is how long a cast measurement waits without a new cast
	// arriving before it stops waiting for the rest.
	castStall = 5 * time.Second
	// castBackoff is the pause after Cast reports back-pressure (Casts and
	// CastCost retry; Flood does not).
	castBackoff = 100 * time.Microsecond
)

// target is what the benchmark server serves.
var target = relay.Target{Topic: "bench"}

// Latency is the result of a sequential latency measurement.
type Latency = latency.Summary

// Throughput is the result of a rate measurement.
type Throughput struct {
	N           int           `json:"n"`                     // calls or messages counted
	Concurrency int           `json:"concurrency,omitempty"` // callers in flight (calls only)
	Elapsed     time.Duration `json:"elapsed_ns,omitempty"`  // 0 when the measurer only returns a rate
	Rate        float64       `json:"per_second"`
}

// CastResult is the result of Casts.
type CastResult struct {
	Sent     int           `json:"sent"`     // casts Cast accepted
	Received int           `json:"received"` // casts the server's handler ran for
	Retries  int           `json:"retries"`  // Cast calls refused with ErrBackPressure, then retried
	Dropped  uint64        `json:"dropped"`  // casts the client node counted as dropped (Stats().DroppedCasts)
	Elapsed  time.Duration `json:"elapsed_ns"`
	Rate     float64       `json:"per_second"` // (Received-1) / time from first to last received
	// Complete is false when fewer than Sent arrived before the receiver
	// stalled for castStall; Rate then covers those that did.
	Complete bool `json:"complete"`
}

// pair is a server node serving the benchmark target and a client node,
// both in this process, on their own in-memory matchmaker.
type pair struct {
	server, client *relay.Node
	proxy          *proxy.Router // router-proxy mode only

	// count, first and last are the cast handler's: casts received, and
	// the UnixNano times of the first and the last. When count reaches
	// want, the handler signals reached (see waitCount).
	count, first, last, want atomic.Int64
	reached                  chan struct{}
	// release, closed, lets the block handler return.
	release chan struct{}
}

// mode says how a pair is built.
type mode struct {
	routed bool           // through a router proxy
	inproc bool           // both nodes WithInproc (same-process fast path)
	server []relay.Option // more options of the server node
	both   []relay.Option // more options of both nodes (CurveCompare's keys)
}

// startPair starts the two nodes (and, routed, a router proxy between).
// The server serves "echo" (returns its []byte argument), "count" (counts
// casts) and "block" (waits for p.release).
func startPair(ctx context.Context, m mode) (*pair, error) {
	mm := "memory://bench-" + randomHex()
	p := &pair{reached: make(chan struct{}, 1), release: make(chan struct{})}
	var err error
	opts := append([]relay.Option{relay.WithMatchmaker(mm)}, m.both...)
	if m.routed {
		if p.proxy, err = proxy.StartRouter(ctx, proxy.WithMatchmaker(mm)); err != nil {
			return nil, fmt.Errorf("bench: start router proxy: %w", err)
		}
		opts = append(opts, relay.WithRouterProxy(true))
	}
	if m.inproc {
		opts = append(opts, relay.WithInproc(true))
	}
	p.server, err = relay.Start(ctx, append(append(opts, relay.WithHost("bench-server")), m.server...)...)
	if err != nil {
		p.closeProxy()
		return nil, fmt.Errorf("bench: start server node: %w", err)
	}
	srv, err := p.server.Serve(target)
	if err != nil {
		p.server.Close()
		p.closeProxy()
		return nil, fmt.Errorf("bench: serve %s: %w", target, err)
	}
	srv.Handle("echo", func(_ context.Context, r *relay.Request) (any, error) {
		var b []byte
		if err := r.Decode(&b); err != nil {
			return nil, err
		}
		return b, nil
	})
	srv.Handle("count", func(context.Context, *relay.Request) (any, error) {
		p.counted(time.Now().UnixNano())
		return nil, nil
	})
	srv.Handle("block", func(ctx context.Context, _ *relay.Request) (any, error) {
		select {
		case <-p.release:
		case <-ctx.Done():
		}
		return nil, nil
	})
	p.client, err = relay.Start(ctx, append(opts, relay.WithHost("bench-client"))...)
	if err != nil {
		p.server.Close()
		p.closeProxy()
		return nil, fmt.Errorf("bench: start client node: %w", err)
	}
	return p, nil
}

// counted records one cast handled at now (UnixNano).
func (p *pair) counted(now int64) {
	n := p.count.Add(1)
	if n == 1 {
		p.first.Store(now)
	}
	// Handlers run concurrently: keep the latest time seen.
	for {
		last := p.last.Load()
		if now <= last || p.last.CompareAndSwap(last, now) {
			break
		}
	}
	if n == p.want.Load() {
		select {
		case p.reached <- struct{}{}:
		default:
		}
	}
}

// waitCount waits until the cast handler has counted n, or counted none
// more for castStall (complete is then false), or ctx ends.
func (p *pair) waitCount(ctx context.Context, n int64) (complete bool, err error) {
	select { // a signal left from an earlier wait
	case <-p.reached:
	default:
	}
	p.want.Store(n)
	t := time.NewTimer(castStall)
	defer t.Stop()
	seen := int64(-1)
	for {
		c := p.count.Load()
		if c >= n {
			return true, nil
		}
		if c == seen {
			return false, nil // nothing counted for castStall
		}
		seen = c
		t.Reset(castStall)
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-p.reached:
		case <-t.C:
		}
	}
}

func (p *pair) closeProxy() {
	if p.proxy != nil {
		p.proxy.Close()
	}
}

// close closes both nodes and joins the errors.
func (p *pair) close(errp *error) {
	cerr := p.client.Close()
	serr := p.server.Close()
	var perr error
	if p.proxy != nil {
		perr = p.proxy.Close()
	}
	if *errp == nil {
		*errp = errors.Join(cerr, serr, perr)
	}
}

// stats describes both nodes' counters, for errors.
func (p *pair) stats() string {
	return fmt.Sprintf("client stats %+v; server stats %+v", p.client.Stats(), p.server.Stats())
}

// warm runs warmup echo calls so that connections exist before timing.
func (p *pair) warm(ctx context.Context, payload []byte) error {
	var out []byte
	if p.proxy != nil {
		// The server's HELLO reaches the proxy within a second.
		deadline := time.Now().Add(5 * time.Second)
		for p.client.Call(ctx, target, "echo", payload, &out) != nil {
			if time.Now().After(deadline) {
				return fmt.Errorf("bench: server not reachable through the router proxy (%s)", p.stats())
			}
			time.Sleep(20 * time.Millisecond) // waiting for the HELLO, bounded
		}
	}
	for i := 0; i < warmup; i++ {
		if err := p.client.Call(ctx, target, "echo", payload, &out); err != nil {
			return fmt.Errorf("bench: warm-up call %d: %w (%s)", i, err, p.stats())
		}
	}
	return nil
}

// warmPair starts a pair in mode m and warms it up with calls of a
// size-byte payload (they open the connections, so that the first
// measured message does not pay for it); it returns the payload.
func warmPair(ctx context.Context, m mode, size int) (*pair, []byte, error) {
	p, err := startPair(ctx, m)
	if err != nil {
		return nil, nil, err
	}
	payload := make([]byte, size)
	if err := p.warm(ctx, payload); err != nil {
		var cerr error
		p.close(&cerr)
		return nil, nil, err
	}
	return p, payload, nil
}

// measuredPair checks n (at least 1) and size (at least 0) for the
// measurement what, and returns warmPair's pair and payload.
func measuredPair(ctx context.Context, what string, m mode, n, size int) (*pair, []byte, error) {
	if n < 1 || size < 0 {
		return nil, nil, fmt.Errorf("bench: %s: need n >= 1 and size >= 0, got n=%d size=%d", what, n, size)
	}
	return warmPair(ctx, m, size)
}

// CallLatency measures n sequential relay calls of a size-byte payload
// echoed back by a server node, after warm-up calls that are not counted.
func CallLatency(ctx context.Context, n, size int) (Latency, error) {
	return callLatency(ctx, mode{}, n, size)
}

// RoutedCallLatency is CallLatency through a router proxy.
func RoutedCallLatency(ctx context.Context, n, size int) (Latency, error) {
	return callLatency(ctx, mode{routed: true}, n, size)
}

// InprocCallLatency is CallLatency between two nodes of this process
// started WithInproc: the same-process fast path.
func InprocCallLatency(ctx context.Context, n, size int) (Latency, error) {
	return callLatency(ctx, mode{inproc: true}, n, size)
}

func callLatency(ctx context.Context, m mode, n, size int) (res Latency, err error) {
	p, payload, err := measuredPair(ctx, "call latency", m, n, size)
	if err != nil {
		return Latency{}, err
	}
	defer p.close(&err)
	samples := make([]time.Duration, n)
	var out []byte
	for i := range samples {
		start := time.Now()
		if err := p.client.Call(ctx, target, "echo", payload, &out); err != nil {
			return Latency{}, fmt.Errorf("bench: call latency: call %d: %w (%s)", i, err, p.stats())
		}
		samples[i] = time.Since(start)
	}
	return latency.Summarize(samples), nil
}

// PipelinedCalls runs n relay calls of a size-byte payload from concurrency
// goroutines, each calling as soon as its previous call returned, and
// returns calls per second.
func PipelinedCalls(ctx context.Context, concurrency, n, size int) (Throughput, error) {
	return pipelinedCalls(ctx, mode{}, concurrency, n, size)
}

// RoutedPipelinedCalls is PipelinedCalls through a router proxy.
func RoutedPipelinedCalls(ctx context.Context, concurrency, n, size int) (Throughput, error) {
	return pipelinedCalls(ctx, mode{routed: true}, concurrency, n, size)
}

func pipelinedCalls(ctx context.Context, m mode, concurrency, n, size int) (res Throughput, err error) {
	if n < 1 || concurrency < 1 || size < 0 {
		return Throughput{}, fmt.Errorf("bench: pipelined calls: need n >= 1, concurrency >= 1 and size >= 0, got n=%d concurrency=%d size=%d",
			n, concurrency, size)
	}
	concurrency = min(concurrency, n)
	p, payload, err := warmPair(ctx, m, size)
	if err != nil {
		return Throughput{}, err
	}
	defer p.close(&err)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	start := time.Now()
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out []byte
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				if err := p.client.Call(ctx, target, "echo", payload, &out); err != nil {
					errOnce.Do(func() {
						firstErr = fmt.Errorf("bench: pipelined calls: call %d: %w (%s)", i, err, p.stats())
						cancel()
					})
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return Throughput{}, firstErr
	}
	return Throughput{N: n, Concurrency: concurrency, Elapsed: elapsed, Rate: float64(n) / elapsed.Seconds()}, nil
}

// Casts sends n relay casts of a size-byte payload as fast as Cast accepts
// them (pausing briefly and retrying when it reports back-pressure, so that
// every one is sent), and measures the rate at the receiver: casts handled
// per second between the first and the last. It waits for all n to arrive,
// or until none arrived for castStall (then Complete is false).
func Casts(ctx context.Context, n, size int) (res CastResult, err error) { return casts(ctx, n, size) }

func casts(ctx context.Context, n, size int, extra ...relay.Option) (res CastResult, err error) {
	if n < 2 || size < 0 {
		return CastResult{}, fmt.Errorf("bench: casts: need n >= 2 and size >= 0, got n=%d size=%d", n, size)
	}
	p, payload, err := warmPair(ctx, mode{both: extra}, size)
	if err != nil {
		return CastResult{}, err
	}
	defer p.close(&err)

	start := time.Now()
	if res.Retries, err = p.castAll(ctx, n, payload); err != nil {
		return res, err
	}
	res.Sent = n
	if res.Complete, err = p.waitCount(ctx, int64(n)); err != nil {
		return res, err
	}
	res.Elapsed = time.Since(start)
	res.Received = int(p.count.Load())
	res.Dropped = p.client.Stats().DroppedCasts
	if res.Received >= 2 {
		span := time.Duration(p.last.Load() - p.first.Load())
		if span > 0 {
			res.Rate = float64(res.Received-1) / span.Seconds()
		}
	}
	return res, nil
}

// castAll casts n times to "count", pausing castBackoff and retrying each
// cast refused with ErrBackPressure; it returns how many were retried.
func (p *pair) castAll(ctx context.Context, n int, payload []byte) (retries int, err error) {
	for sent := 0; sent < n; {
		err := p.client.Cast(ctx, target, "count", payload)
		switch {
		case err == nil:
			sent++
		case errors.Is(err, relay.ErrBackPressure):
			retries++
			select {
			case <-time.After(castBackoff):
			case <-ctx.Done():
				return retries, ctx.Err()
			}
		default:
			return retries, fmt.Errorf("bench: cast %d: %w", sent, err)
		}
	}
	return retries, nil
}

// randomHex returns 8 random bytes in hex, for unique registry names.
func randomHex() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
