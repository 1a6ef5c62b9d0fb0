package sockets

import (
	"context"
	"fmt"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/relay-dev/relay/curve"
)

// sendRawPoll bounds each wait of SendRaw, so that it notices ctx ending.
const sendRawPoll = 20 * time.Millisecond

// sendRawFlush bounds how long SendRaw waits, after queueing the message,
// for libzmq to write it out (when ctx has no earlier deadline).
const sendRawFlush = 2 * time.Second

// SendRaw puts arbitrary bytes on the wire: it connects a fresh DEALER to
// endpoint (e.g. a node's ROUTER, "tcp://127.0.0.1:20517") and sends frames
// as one multipart message, exactly as given, with no envelope. It is for
// tests and tools that need to send what relay itself never would
// (malformed frames, unknown versions); relay's own traffic never uses it.
//
// SendRaw returns once the message is sent: queued on a completed connection
// and flushed by libzmq (which it waits for up to ctx's deadline or 2s), or
// with ctx.Err() when ctx ends before a connection is made (e.g. nothing
// listens at endpoint). The
// DEALER has its own ZeroMQ context; the socket and the context are closed
// and terminated before SendRaw returns, and no goroutine outlives it. The
// socket waits for a completed connection before sending (IMMEDIATE); it
// lingers only to flush the message it sent, and closes with linger 0 on
// every other path.
func SendRaw(ctx context.Context, endpoint string, frames ...[]byte) (err error) {
	const op = "sockets: send raw"
	if len(frames) == 0 {
		return fmt.Errorf("%s to %s: no frames", op, endpoint)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	zctx, err := zmq.NewContext()
	if err != nil {
		return fmt.Errorf("%s: new context: %w", op, err)
	}
	defer func() {
		if terr := zctx.Term(); terr != nil && err == nil {
			err = fmt.Errorf("%s: terminate context: %w", op, terr)
		}
	}()
	s, err := zctx.NewSocket(zmq.DEALER)
	if err != nil {
		return fmt.Errorf("%s: new dealer: %w", op, err)
	}
	linger := time.Duration(0)
	defer func() {
		// Linger 0 unless the message is queued: then give libzmq the time
		// to write it out; Term waits for that.
		if lerr := s.SetLinger(linger); lerr != nil && err == nil {
			err = fmt.Errorf("%s: set linger: %w", op, lerr)
		}
		if cerr := s.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("%s: close dealer: %w", op, cerr)
		}
	}()
	for _, o := range []struct {
		name string
		set  func() error
	}{
		{"LINGER", func() error { return s.SetLinger(0) }},
		{"IMMEDIATE", func() error { return s.SetImmediate(true) }},
	} {
		if err := o.set(); err != nil {
			return fmt.Errorf("%s: set %s: %w", op, o.name, err)
		}
	}
	if err := s.Connect(endpoint); err != nil {
		return fmt.Errorf("%s: connect %s: %w", op, endpoint, err)
	}

	// With IMMEDIATE, POLLOUT means a connection to the peer is complete.
	poller := zmq.NewPoller()
	poller.Add(s, zmq.POLLOUT)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		polled, err := poller.Poll(sendRawPoll)
		if err != nil {
			return fmt.Errorf("%s: poll %s: %w", op, endpoint, err)
		}
		if len(polled) == 0 {
			continue
		}
		err = sendFrames(s, frames...)
		if err == nil {
			break
		}
		if !isAgain(err) {
			return fmt.Errorf("%s to %s: %w", op, endpoint, err)
		}
	}
	linger = sendRawFlush
	if dl, ok := ctx.Deadline(); ok {
		linger = min(linger, max(time.Until(dl), time.Millisecond))
	}
	return nil
}

// sendFrames writes the frames of one message without blocking, with
// zmq4's calls (for tools; loops use the batched helper).
func sendFrames(s *zmq.Socket, frames ...[]byte) error {
	last := len(frames) - 1
	for i, f := range frames {
		flags := zmq.DONTWAIT
		if i < last {
			flags |= zmq.SNDMORE
		}
		if _, err := s.SendBytes(f, flags); err != nil {
			return err
		}
	}
	return nil
}

// RawDealer is a DEALER on a ZeroMQ context of its own, for tests and tools
// that must act as relay never would: present a chosen routing id (an
// impostor's), send hand-made records, read what comes back. It is used
// by one goroutine; Close it.
type RawDealer struct {
	zctx *zmq.Context
	s    *zmq.Socket
}

// RawDealerConfig configures DialRaw.
type RawDealerConfig struct {
	// Identity, when set, is the routing id the DEALER presents.
	Identity []byte
	// Keys, when set, turn CURVE on; the endpoint then carries the
	// server's key (curve.WithKey).
	Keys *curve.KeyPair
}

// DialRaw connects a RawDealer to endpoint. It returns before the
// connection is made.
func DialRaw(endpoint string, cfg RawDealerConfig) (*RawDealer, error) {
	zctx, err := zmq.NewContext()
	if err != nil {
		return nil, fmt.Errorf("sockets: raw dealer: %w", err)
	}
	d := &RawDealer{zctx: zctx}
	fail := func(err error) (*RawDealer, error) {
		d.Close()
		return nil, fmt.Errorf("sockets: raw dealer to %s: %w", endpoint, err)
	}
	if d.s, err = zctx.NewSocket(zmq.DEALER); err != nil {
		return fail(err)
	}
	if err := d.s.SetLinger(0); err != nil {
		return fail(err)
	}
	if len(cfg.Identity) > 0 {
		if err := d.s.SetIdentity(string(cfg.Identity)); err != nil {
			return fail(err)
		}
	}
	var c *Curve
	if cfg.Keys != nil {
		c = &Curve{Keys: *cfg.Keys}
		if err := c.apply(d.s, zmq.DEALER); err != nil {
			return fail(err)
		}
	}
	if err := connect(d.s, c, endpoint); err != nil {
		return fail(err)
	}
	return d, nil
}

// Send queues one message of frames without waiting; an error when it
// cannot (no connection is left to queue it on, or the queue is full).
func (d *RawDealer) Send(frames ...[]byte) error {
	last := len(frames) - 1
	for i, f := range frames {
		flags := zmq.DONTWAIT
		if i < last {
			flags |= zmq.SNDMORE
		}
		if _, err := d.s.SendBytes(f, flags); err != nil {
			return fmt.Errorf("sockets: raw dealer send: %w", err)
		}
	}
	return nil
}

// Recv receives one message, waiting up to timeout; an error when none
// came.
func (d *RawDealer) Recv(timeout time.Duration) ([][]byte, error) {
	if err := d.s.SetRcvtimeo(timeout); err != nil {
		return nil, err
	}
	m, err := d.s.RecvMessageBytes(0)
	if err != nil {
		return nil, fmt.Errorf("sockets: raw dealer recv: %w", err)
	}
	return m, nil
}

// Close closes the socket and terminates its context.
func (d *RawDealer) Close() error {
	if d.s != nil {
		d.s.Close()
		d.s = nil
	}
	if d.zctx != nil {
		err := d.zctx.Term()
		d.zctx = nil
		return err
	}
	return nil
}
