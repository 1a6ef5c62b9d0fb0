package sockets

// Raw libzmq measurements: the floor relay is compared against.
//
// Each function builds its own zmq context and sockets with no relay code on
// top, measures one pattern over tcp on 127.0.0.1, and tears everything down
// before it returns: every socket is closed (linger 0) in the goroutine that
// made it, the context is terminated, and no goroutine outlives the call.
// Waits wake every rawPollInterval to honour ctx cancellation.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/relay-dev/relay/internal/latency"

	zmq "github.com/pebbe/zmq4"
)

const (
	// rawEndpoint binds an ephemeral tcp port; ZMQ_LAST_ENDPOINT tells which.
	rawEndpoint = "tcp://127.0.0.1:*"
	// rawHWM is the send and receive high-water mark of every raw socket.
	rawHWM = 100000
	// rawPollInterval bounds how long a raw socket call blocks before the
	// caller checks ctx (and whether its peer goroutine has failed).
	rawPollInterval = 100 * time.Millisecond
	// rawWarmup round trips run before RawRoundTrip starts counting.
	rawWarmup = 200
	// rawCtxEvery is how many messages pass between checks of ctx while
	// traffic flows (timeouts check it too).
	rawCtxEvery = 256
)

// RawLatency holds what one raw round-trip measurement produced.
type RawLatency = latency.Summary

// RawRoundTrip measures n sequential round trips of a size-byte payload from
// a DEALER to an echoing ROUTER over tcp on 127.0.0.1, both in this process,
// after rawWarmup round trips that are not counted. The ROUTER echo loop runs
// in its own goroutine; the DEALER runs in the caller's.
func RawRoundTrip(ctx context.Context, n, size int) (RawLatency, error) {
	const op = "raw round trip"
	var bad error
	if n < 1 || size < 0 {
		bad = fmt.Errorf("%s: need n >= 1 and size >= 0, got n=%d size=%d", op, n, size)
	}
	var res RawLatency
	err := rawMeasure(ctx, op, bad, func(zctx *zmq.Context) error {
		return withEchoDealer(zctx, op, func(dealer *zmq.Socket, failed func() error) error {
			payload := rawPayload(size)
			for i := 0; i < rawWarmup; i++ {
				if err := ctx.Err(); err != nil {
					return err
				}
				if err := rawRoundTripOnce(ctx, dealer, payload, failed); err != nil {
					return fmt.Errorf("%s: warm-up: %w", op, err)
				}
			}
			samples := make([]time.Duration, n)
			for i := range samples {
				if i%rawCtxEvery == 0 {
					if err := ctx.Err(); err != nil {
						return err
					}
				}
				start := time.Now()
				if err := rawRoundTripOnce(ctx, dealer, payload, failed); err != nil {
					return fmt.Errorf("%s: round trip %d: %w", op, i, err)
				}
				samples[i] = time.Since(start)
			}
			res = summarizeRaw(samples)
			return nil
		})
	})
	if err != nil {
		return RawLatency{}, err
	}
	return res, nil
}

// RawPipelined keeps concurrency requests of size bytes in flight from one
// DEALER to an echoing ROUTER over tcp (a new request per reply) until n
// round trips have completed, and returns round trips per second.
func RawPipelined(ctx context.Context, concurrency, n, size int) (float64, error) {
	const op = "raw pipelined"
	var bad error
	if n < 1 || concurrency < 1 || size < 0 {
		bad = fmt.Errorf("%s: need n >= 1, concurrency >= 1 and size >= 0, got n=%d concurrency=%d size=%d",
			op, n, concurrency, size)
	}
	concurrency = min(concurrency, n)
	var rate float64
	err := rawMeasure(ctx, op, bad, func(zctx *zmq.Context) error {
		return withEchoDealer(zctx, op, func(dealer *zmq.Socket, failed func() error) (err error) {
			rate, err = rawPipeline(ctx, op, dealer, failed, concurrency, n, size)
			return err
		})
	})
	if err != nil {
		return 0, err
	}
	return rate, nil
}

// rawPipeline is RawPipelined's measurement on a DEALER connected to an
// echo.
func rawPipeline(ctx context.Context, op string, dealer *zmq.Socket, failed func() error, concurrency, n, size int) (float64, error) {
	payload := rawPayload(size)
	// Warm the connection up with one round trip so the timing below does
	// not include the tcp handshake.
	if err := rawRoundTripOnce(ctx, dealer, payload, failed); err != nil {
		return 0, fmt.Errorf("%s: warm-up: %w", op, err)
	}
	start := time.Now()
	sent, received := 0, 0
	for ; sent < concurrency; sent++ {
		if err := rawSend(ctx, dealer, payload, failed); err != nil {
			return 0, fmt.Errorf("%s: send %d: %w", op, sent, err)
		}
	}
	for received < n {
		if err := rawExpect(ctx, op, dealer, failed, payload, "reply", received); err != nil {
			return 0, err
		}
		received++
		if sent < n {
			if err := rawSend(ctx, dealer, payload, failed); err != nil {
				return 0, fmt.Errorf("%s: send %d: %w", op, sent, err)
			}
			sent++
		}
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// RawPushPull sends n messages of size bytes from a PUSH to a PULL over tcp,
// as fast as the pusher can, and returns the rate measured at the receiver
// (messages per second between the first and the last message received).
// The pusher runs in its own goroutine; the puller in the caller's.
func RawPushPull(ctx context.Context, n, size int) (float64, error) {
	const op = "raw push/pull"
	var bad error
	if n < 2 || size < 0 {
		bad = fmt.Errorf("%s: need n >= 2 and size >= 0, got n=%d size=%d", op, n, size)
	}
	var rate float64
	err := rawMeasure(ctx, op, bad, func(zctx *zmq.Context) (err error) {
		pull, err := newRawSocket(zctx, zmq.PULL, op)
		if err != nil {
			return err
		}
		defer closeRaw(pull, op, "pull", &err)
		endpoint, err := rawBind(pull, op)
		if err != nil {
			return err
		}
		pusher := startRawPeer(func(done <-chan struct{}) error {
			return rawPush(zctx, endpoint, n, size, done)
		})
		defer pusher.stopInto(&err)
		rate, err = rawPull(ctx, op, pull, pusher.failed, n, size)
		return err
	})
	if err != nil {
		return 0, err
	}
	return rate, nil
}

// rawPull is RawPushPull's measurement on the PULL.
func rawPull(ctx context.Context, op string, pull *zmq.Socket, failed func() error, n, size int) (float64, error) {
	want := rawPayload(size)
	var first, last time.Time
	for i := 0; i < n; i++ {
		if err := rawExpect(ctx, op, pull, failed, want, "message", i); err != nil {
			return 0, err
		}
		if i == 0 {
			first = time.Now()
		}
	}
	last = time.Now()
	return float64(n-1) / last.Sub(first).Seconds(), nil
}

// rawMeasure is the frame of every raw measurement: it fails with bad
// (the arguments' error) unless ctx has ended first, runs measure with a
// ZeroMQ context of its own, terminated after it, and returns ctx's error
// unchanged when ctx's end was the failure.
func rawMeasure(ctx context.Context, op string, bad error, measure func(zctx *zmq.Context) error) (err error) {
	defer ctxErrUnchanged(ctx, &err)
	if err := ctx.Err(); err != nil {
		return err
	}
	if bad != nil {
		return bad
	}
	zctx, err := zmq.NewContext()
	if err != nil {
		return fmt.Errorf("%s: new context: %w", op, err)
	}
	defer termRaw(zctx, op, &err)
	return measure(zctx)
}

// withEchoDealer starts an echoing ROUTER, connects a DEALER to it, and
// runs f with the DEALER and the echo's failed; both are closed after.
func withEchoDealer(zctx *zmq.Context, op string, f func(dealer *zmq.Socket, failed func() error) error) (err error) {
	echo, err := startRawEcho(zctx, op)
	if err != nil {
		return err
	}
	defer echo.stopInto(&err)
	dealer, err := newRawSocket(zctx, zmq.DEALER, op)
	if err != nil {
		return err
	}
	defer closeRaw(dealer, op, "dealer", &err)
	if err := dealer.Connect(echo.endpoint); err != nil {
		return fmt.Errorf("%s: connect %s: %w", op, echo.endpoint, err)
	}
	return f(dealer, echo.failed)
}

// rawPush connects a PUSH to endpoint, sends n messages of size bytes, and
// keeps the socket open until done is closed (closing with linger 0 earlier
// would drop what is still queued). Runs in its own goroutine; it creates,
// uses and closes the PUSH.
func rawPush(zctx *zmq.Context, endpoint string, n, size int, done <-chan struct{}) (err error) {
	const op = "raw push/pull"
	push, err := newRawSocket(zctx, zmq.PUSH, op)
	if err != nil {
		return err
	}
	defer closeRaw(push, op, "push", &err)
	if err := push.Connect(endpoint); err != nil {
		return fmt.Errorf("%s: connect %s: %w", op, endpoint, err)
	}
	stopped := rawStopped(done)
	payload := rawPayload(size)
	for i := 0; i < n; i++ {
		if err := rawSend(context.Background(), push, payload, stopped); err != nil {
			if errors.Is(err, errRawStopped) {
				return nil
			}
			return fmt.Errorf("%s: send message %d: %w", op, i, err)
		}
	}
	<-done
	return nil
}
