package sockets

// Raw libzmq measurements: the floor relay is compared against.
//
// Each function builds its own zmq context and sockets with no relay code on
// top, measures one pattern over tcp on 127.0.0.1, and tears everything down
// before it returns: every socket is closed (linger 0) in the goroutine that
// made it, the context is terminated, and no goroutine outlives the call.
// Waits wake every rawPollInterval to honour ctx cancellation.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"syscall"
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
func RawRoundTrip(ctx context.Context, n, size int) (res RawLatency, err error) {
	const op = "raw round trip"
	defer ctxErrUnchanged(ctx, &err)
	if err := ctx.Err(); err != nil {
		return RawLatency{}, err
	}
	if n < 1 || size < 0 {
		return RawLatency{}, fmt.Errorf("%s: need n >= 1 and size >= 0, got n=%d size=%d", op, n, size)
	}
	zctx, err := zmq.NewContext()
	if err != nil {
		return RawLatency{}, fmt.Errorf("%s: new context: %w", op, err)
	}
	defer termRaw(zctx, op, &err)

	echo, err := startRawEcho(zctx, op)
	if err != nil {
		return RawLatency{}, err
	}
	defer echo.stopInto(&err)

	dealer, err := newRawSocket(zctx, zmq.DEALER, op)
	if err != nil {
		return RawLatency{}, err
	}
	defer closeRaw(dealer, op, "dealer", &err)
	if err := dealer.Connect(echo.endpoint); err != nil {
		return RawLatency{}, fmt.Errorf("%s: connect %s: %w", op, echo.endpoint, err)
	}

	payload := rawPayload(size)
	for i := 0; i < rawWarmup; i++ {
		if err := ctx.Err(); err != nil {
			return RawLatency{}, err
		}
		if err := rawRoundTripOnce(ctx, dealer, payload, echo.failed); err != nil {
			return RawLatency{}, fmt.Errorf("%s: warm-up: %w", op, err)
		}
	}
	samples := make([]time.Duration, n)
	for i := range samples {
		if i%rawCtxEvery == 0 {
			if err := ctx.Err(); err != nil {
				return RawLatency{}, err
			}
		}
		start := time.Now()
		if err := rawRoundTripOnce(ctx, dealer, payload, echo.failed); err != nil {
			return RawLatency{}, fmt.Errorf("%s: round trip %d: %w", op, i, err)
		}
		samples[i] = time.Since(start)
	}
	return summarizeRaw(samples), nil
}

// RawPipelined keeps concurrency requests of size bytes in flight from one
// DEALER to an echoing ROUTER over tcp (a new request per reply) until n
// round trips have completed, and returns round trips per second.
func RawPipelined(ctx context.Context, concurrency, n, size int) (rate float64, err error) {
	const op = "raw pipelined"
	defer ctxErrUnchanged(ctx, &err)
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if n < 1 || concurrency < 1 || size < 0 {
		return 0, fmt.Errorf("%s: need n >= 1, concurrency >= 1 and size >= 0, got n=%d concurrency=%d size=%d",
			op, n, concurrency, size)
	}
	concurrency = min(concurrency, n)
	zctx, err := zmq.NewContext()
	if err != nil {
		return 0, fmt.Errorf("%s: new context: %w", op, err)
	}
	defer termRaw(zctx, op, &err)

	echo, err := startRawEcho(zctx, op)
	if err != nil {
		return 0, err
	}
	defer echo.stopInto(&err)

	dealer, err := newRawSocket(zctx, zmq.DEALER, op)
	if err != nil {
		return 0, err
	}
	defer closeRaw(dealer, op, "dealer", &err)
	if err := dealer.Connect(echo.endpoint); err != nil {
		return 0, fmt.Errorf("%s: connect %s: %w", op, echo.endpoint, err)
	}

	payload := rawPayload(size)
	// Warm the connection up with one round trip so the timing below does
	// not include the tcp handshake.
	if err := rawRoundTripOnce(ctx, dealer, payload, echo.failed); err != nil {
		return 0, fmt.Errorf("%s: warm-up: %w", op, err)
	}

	start := time.Now()
	sent, received := 0, 0
	for ; sent < concurrency; sent++ {
		if err := rawSend(ctx, dealer, payload, echo.failed); err != nil {
			return 0, fmt.Errorf("%s: send %d: %w", op, sent, err)
		}
	}
	for received < n {
		if received%rawCtxEvery == 0 {
			if err := ctx.Err(); err != nil {
				return 0, err
			}
		}
		reply, err := rawRecv(ctx, dealer, echo.failed)
		if err != nil {
			return 0, fmt.Errorf("%s: receive reply %d: %w", op, received, err)
		}
		if err := rawSame(reply, payload); err != nil {
			return 0, fmt.Errorf("%s: reply %d: %w", op, received, err)
		}
		received++
		if sent < n {
			if err := rawSend(ctx, dealer, payload, echo.failed); err != nil {
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
func RawPushPull(ctx context.Context, n, size int) (rate float64, err error) {
	const op = "raw push/pull"
	defer ctxErrUnchanged(ctx, &err)
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if n < 2 || size < 0 {
		return 0, fmt.Errorf("%s: need n >= 2 and size >= 0, got n=%d size=%d", op, n, size)
	}
	zctx, err := zmq.NewContext()
	if err != nil {
		return 0, fmt.Errorf("%s: new context: %w", op, err)
	}
	defer termRaw(zctx, op, &err)

	pull, err := newRawSocket(zctx, zmq.PULL, op)
	if err != nil {
		return 0, err
	}
	defer closeRaw(pull, op, "pull", &err)
	endpoint, err := rawBind(pull, op)
	if err != nil {
		return 0, err
	}

	pusher := startRawPeer(func(done <-chan struct{}) error {
		return rawPush(zctx, endpoint, n, size, done)
	})
	defer pusher.stopInto(&err)

	want := rawPayload(size)
	var first, last time.Time
	for i := 0; i < n; i++ {
		if i%rawCtxEvery == 0 {
			if err := ctx.Err(); err != nil {
				return 0, err
			}
		}
		msg, err := rawRecv(ctx, pull, pusher.failed)
		if err != nil {
			return 0, fmt.Errorf("%s: receive message %d: %w", op, i, err)
		}
		if err := rawSame(msg, want); err != nil {
			return 0, fmt.Errorf("%s: message %d: %w", op, i, err)
		}
		if i == 0 {
			first = time.Now()
		}
	}
	last = time.Now()
	return float64(n-1) / last.Sub(first).Seconds(), nil
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
	stopped := func() error {
		select {
		case <-done:
			return errRawStopped
		default:
			return nil
		}
	}
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

// errRawStopped reports that a raw peer goroutine was asked to stop.
var errRawStopped = errors.New("stopped")

// rawPeer is a goroutine that owns one raw socket for the measurement in
// the caller's goroutine.
type rawPeer struct {
	done    chan struct{} // closed to ask the goroutine to stop
	stopped chan struct{} // closed once the goroutine has closed its socket
	err     error         // the goroutine's result; read only after stopped
}

// startRawPeer runs fn in its own goroutine; fn must return once done closes.
func startRawPeer(fn func(done <-chan struct{}) error) *rawPeer {
	p := &rawPeer{done: make(chan struct{}), stopped: make(chan struct{})}
	go func() {
		defer close(p.stopped)
		p.err = fn(p.done)
	}()
	return p
}

// failed reports, without blocking, why the peer goroutine has already
// stopped, or nil while it runs.
func (p *rawPeer) failed() error {
	select {
	case <-p.stopped:
		if p.err != nil {
			return p.err
		}
		return errors.New("peer goroutine stopped early")
	default:
		return nil
	}
}

// stopInto stops the peer, waits for it, and stores its error in *errp if
// *errp holds none yet.
func (p *rawPeer) stopInto(errp *error) {
	close(p.done)
	<-p.stopped
	if *errp == nil && p.err != nil {
		*errp = p.err
	}
}

// rawEcho is a ROUTER echo loop running in its own goroutine.
type rawEcho struct {
	*rawPeer
	endpoint string // where the ROUTER listens
}

// startRawEcho starts a goroutine that binds a ROUTER on an ephemeral tcp
// port and echoes every message back to its sender until stopped. It
// returns once the ROUTER listens, or with the bind error.
func startRawEcho(zctx *zmq.Context, op string) (*rawEcho, error) {
	ready := make(chan string, 1)
	e := &rawEcho{}
	e.rawPeer = startRawPeer(func(done <-chan struct{}) error {
		return runRawEcho(zctx, op, ready, done)
	})
	select {
	case e.endpoint = <-ready:
		return e, nil
	case <-e.stopped:
		return nil, e.err
	}
}

// runRawEcho binds a ROUTER, sends its endpoint on ready, and echoes until
// done closes. Runs in its own goroutine; it creates, uses and closes the
// ROUTER.
func runRawEcho(zctx *zmq.Context, op string, ready chan<- string, done <-chan struct{}) (err error) {
	router, err := newRawSocket(zctx, zmq.ROUTER, op)
	if err != nil {
		return err
	}
	defer closeRaw(router, op, "router", &err)
	if err := router.SetRouterMandatory(1); err != nil {
		return fmt.Errorf("%s: router: set ROUTER_MANDATORY: %w", op, err)
	}
	endpoint, err := rawBind(router, op)
	if err != nil {
		return err
	}
	ready <- endpoint

	stopped := func() error {
		select {
		case <-done:
			return errRawStopped
		default:
			return nil
		}
	}
	for {
		msg, err := rawRecv(context.Background(), router, stopped)
		if errors.Is(err, errRawStopped) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: echo receive: %w", op, err)
		}
		if _, err := router.SendMessage(msg); err != nil {
			if isRawTimeout(err) {
				// The peer's pipe is full; the measurement will notice the
				// missing reply. Do not block the loop.
				continue
			}
			return fmt.Errorf("%s: echo send: %w", op, err)
		}
	}
}

// rawRoundTripOnce sends payload on a DEALER and waits for its echo.
func rawRoundTripOnce(ctx context.Context, dealer *zmq.Socket, payload []byte, failed func() error) error {
	if err := rawSend(ctx, dealer, payload, failed); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	reply, err := rawRecv(ctx, dealer, failed)
	if err != nil {
		return fmt.Errorf("receive: %w", err)
	}
	return rawSame(reply, payload)
}

// rawPayload returns size bytes of a pattern, so that an echo that changes
// or truncates them is seen.
func rawPayload(size int) []byte {
	p := make([]byte, size)
	for i := range p {
		p[i] = byte(i*7 + 1)
	}
	return p
}

// rawSame reports an error unless msg is the one frame sent.
func rawSame(msg [][]byte, sent []byte) error {
	if len(msg) != 1 || !bytes.Equal(msg[0], sent) {
		n := 0
		if len(msg) > 0 {
			n = len(msg[0])
		}
		return fmt.Errorf("got %d frames (the first of %d bytes), want the %d bytes sent", len(msg), n, len(sent))
	}
	return nil
}

// rawSend sends one single-frame message, retrying every rawPollInterval
// while the socket cannot take it, until ctx ends or failed reports an error.
func rawSend(ctx context.Context, s *zmq.Socket, payload []byte, failed func() error) error {
	for {
		_, err := s.SendBytes(payload, 0)
		if err == nil {
			return nil
		}
		if !isRawTimeout(err) {
			return err
		}
		if err := rawCheck(ctx, failed); err != nil {
			return err
		}
	}
}

// rawRecv receives one message, waking every rawPollInterval to check ctx
// and failed.
func rawRecv(ctx context.Context, s *zmq.Socket, failed func() error) ([][]byte, error) {
	for {
		msg, err := s.RecvMessageBytes(0)
		if err == nil {
			return msg, nil
		}
		if !isRawTimeout(err) {
			return nil, err
		}
		if err := rawCheck(ctx, failed); err != nil {
			return nil, err
		}
	}
}

// ctxErrUnchanged replaces *errp with ctx.Err() when the failure was ctx
// ending, so callers get context.Canceled or DeadlineExceeded unwrapped.
func ctxErrUnchanged(ctx context.Context, errp *error) {
	if cerr := ctx.Err(); cerr != nil && errors.Is(*errp, cerr) {
		*errp = cerr
	}
}

// rawCheck returns ctx's error or failed's, whichever is set.
func rawCheck(ctx context.Context, failed func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return failed()
}

// isRawTimeout reports whether err is the EAGAIN a socket returns when its
// send or receive timeout expires.
func isRawTimeout(err error) bool {
	return zmq.AsErrno(err) == zmq.Errno(syscall.EAGAIN)
}

// newRawSocket makes a socket with linger 0, explicit HWMs and
// rawPollInterval send/receive timeouts. The caller's goroutine owns it.
func newRawSocket(zctx *zmq.Context, t zmq.Type, op string) (*zmq.Socket, error) {
	s, err := zctx.NewSocket(t)
	if err != nil {
		return nil, fmt.Errorf("%s: new %s socket: %w", op, t, err)
	}
	for _, o := range []struct {
		name string
		set  func() error
	}{
		{"LINGER", func() error { return s.SetLinger(0) }},
		{"SNDHWM", func() error { return s.SetSndhwm(rawHWM) }},
		{"RCVHWM", func() error { return s.SetRcvhwm(rawHWM) }},
		{"SNDTIMEO", func() error { return s.SetSndtimeo(rawPollInterval) }},
		{"RCVTIMEO", func() error { return s.SetRcvtimeo(rawPollInterval) }},
	} {
		if err := o.set(); err != nil {
			s.Close()
			return nil, fmt.Errorf("%s: %s socket: set %s: %w", op, t, o.name, err)
		}
	}
	return s, nil
}

// rawBind binds s to rawEndpoint and returns the endpoint it got.
func rawBind(s *zmq.Socket, op string) (string, error) {
	if err := s.Bind(rawEndpoint); err != nil {
		return "", fmt.Errorf("%s: bind %s: %w", op, rawEndpoint, err)
	}
	endpoint, err := s.GetLastEndpoint()
	if err != nil {
		return "", fmt.Errorf("%s: read ZMQ_LAST_ENDPOINT after bind %s: %w", op, rawEndpoint, err)
	}
	return endpoint, nil
}

// closeRaw closes s and stores a close error in *errp if it holds none yet.
func closeRaw(s *zmq.Socket, op, name string, errp *error) {
	if err := s.Close(); err != nil && *errp == nil {
		*errp = fmt.Errorf("%s: close %s: %w", op, name, err)
	}
}

// termRaw terminates zctx (every socket must be closed by now) and stores a
// term error in *errp if it holds none yet.
func termRaw(zctx *zmq.Context, op string, errp *error) {
	if err := zctx.Term(); err != nil && *errp == nil {
		*errp = fmt.Errorf("%s: terminate context: %w", op, err)
	}
}

// summarizeRaw summarizes round-trip samples.
func summarizeRaw(samples []time.Duration) RawLatency { return latency.Summarize(samples) }
