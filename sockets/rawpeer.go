package sockets

// The pieces of the raw measurements (rawbench.go): goroutines that own
// one raw socket each, an echoing ROUTER, and sends and receives that
// honour ctx.

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

// errRawStopped reports that a raw peer goroutine was asked to stop.
var errRawStopped = errors.New("stopped")

// rawStopped returns a failed function (see rawSend) that reports
// errRawStopped once done is closed.
func rawStopped(done <-chan struct{}) func() error {
	return func() error {
		select {
		case <-done:
			return errRawStopped
		default:
			return nil
		}
	}
}

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

	stopped := rawStopped(done)
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

// rawExpect receives message i (named what in errors) on s and checks that
// it is want; every rawCtxEvery messages it checks ctx first.
func rawExpect(ctx context.Context, op string, s *zmq.Socket, failed func() error, want []byte, what string, i int) error {
	if i%rawCtxEvery == 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	msg, err := rawRecv(ctx, s, failed)
	if err != nil {
		return fmt.Errorf("%s: receive %s %d: %w", op, what, i, err)
	}
	if err := rawSame(msg, want); err != nil {
		return fmt.Errorf("%s: %s %d: %w", op, what, i, err)
	}
	return nil
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
