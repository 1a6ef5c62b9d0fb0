package relay

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/relay-dev/relay/actors"
	"github.com/relay-dev/relay/envelope"
	"github.com/relay-dev/relay/matchmaker"
	"github.com/relay-dev/relay/sockets"
)

// Call sends args to method on one server of t and waits for its reply,
// which it decodes into reply (a pointer; nil to discard). It returns
// exactly one of: nil (reply filled), a *RemoteError (the handler's error or
// panic), an error matching ErrNoSuchMethod, ErrTimeout (also
// context.DeadlineExceeded when ctx's deadline fired), ErrNoServers,
// ErrBackPressure, ErrClosed, or ctx.Err() when ctx was cancelled.
// The deadline is ctx's, or WithCallTimeout from now.
func (n *Node) Call(ctx context.Context, t Target, method string, args, reply any) error {
	start := time.Now()
	deadline, ctxDeadline := ctx.Deadline()
	if !ctxDeadline {
		deadline = start.Add(n.opts.callTimeout)
	}
	addr, hdr, body, err := n.prepare(ctx, envelope.KindCall, t, method, args, deadline)
	if err != nil {
		return err
	}
	call := actors.NewCall(hdr.ID, deadline)
	msg := n.message(addr, &hdr, body, call)
	if hdr.AckWanted {
		call.WithResend(n.resendOf(msg, hdr.ID, false), n.opts.retry.Base)
	}
	res, err := n.send(ctx, msg, call)
	if err != nil {
		return fmt.Errorf("%w: call %s on %s", err, method, t)
	}
	return n.outcome(res, t, method, reply, start, ctxDeadline)
}

// send queues a request whose answer comes back to call (registered in the
// pending table first) and waits for exactly one outcome: the answer, the
// call's deadline, ctx's end, or the node going down.
func (n *Node) send(ctx context.Context, msg sockets.Message, call *actors.Call) (actors.Result, error) {
	n.pending.Add(call)
	if err := n.push(ctx, msg); err != nil {
		n.pending.Take(call.ID)
		return actors.Result{}, err
	}
	select {
	case res := <-call.Done():
		return res, nil
	case <-ctx.Done():
		n.pending.Fail(call, ctx.Err())
	case <-n.down:
		n.pending.Fail(call, n.downErr())
	}
	return <-call.Done(), nil
}

// outcome turns a call's Result into Call's return value.
func (n *Node) outcome(res actors.Result, t Target, method string, reply any, start time.Time, ctxDeadline bool) error {
	if res.Err != nil {
		switch {
		case errors.Is(res.Err, ErrTimeout) || errors.Is(res.Err, context.DeadlineExceeded):
			return &timeoutError{what: fmt.Sprintf("call %s on %s", method, t), after: time.Since(start), ctxExpired: ctxDeadline}
		case errors.Is(res.Err, context.Canceled):
			return res.Err
		case errors.Is(res.Err, sockets.ErrBackPressure):
			return fmt.Errorf("%w: call %s on %s: %v", ErrBackPressure, method, t, res.Err)
		case errors.Is(res.Err, sockets.ErrExpired), errors.Is(res.Err, sockets.ErrUnreachable):
			return &timeoutError{what: fmt.Sprintf("call %s on %s (server unreachable)", method, t), after: time.Since(start), ctxExpired: ctxDeadline}
		case errors.Is(res.Err, ErrClosed) || errors.Is(res.Err, ErrNodeFailed):
			return res.Err
		default:
			return fmt.Errorf("relay: call %s on %s: %w", method, t, res.Err)
		}
	}
	if res.Kind == envelope.KindError {
		code, msg, err := envelope.DecodeError(res.Body)
		if err != nil {
			return &RemoteError{Code: CodeBadReply, Message: fmt.Sprintf("undecodable error reply to %s on %s: %v", method, t, err)}
		}
		if code == CodeNoSuchMethod {
			return fmt.Errorf("%w: %s", ErrNoSuchMethod, msg)
		}
		if code == CodeNoRoute {
			return fmt.Errorf("%w: %s", ErrNoServers, msg)
		}
		return &RemoteError{Code: code, Message: msg}
	}
	if reply == nil {
		return nil
	}
	if err := envelope.DecodeBody(res.Body, reply); err != nil {
		return fmt.Errorf("relay: call %s on %s: decode reply into %T: %w", method, t, reply, err)
	}
	return nil
}

// Cast sends args to method on one server of t without waiting for a
// result. It returns once the message is queued for sending; a message that
// cannot be sent before its deadline (ctx's, or WithCallTimeout from now) is
// dropped, counted in Stats().DroppedCasts and logged. Errors: ErrNoServers,
// ErrBackPressure, ErrBadTarget, ErrClosed, ctx.Err().
func (n *Node) Cast(ctx context.Context, t Target, method string, args any) error {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(n.opts.callTimeout)
	}
	if t.Fanout {
		return n.fanout(ctx, t, method, args, deadline)
	}
	addr, hdr, body, err := n.prepare(ctx, envelope.KindCast, t, method, args, deadline)
	if err != nil {
		return err
	}
	var call *actors.Call
	if hdr.AckWanted {
		call = actors.NewCall(hdr.ID, deadline)
	}
	msg := n.message(addr, &hdr, body, call)
	if call != nil {
		// Resent by the reply-waiter until acknowledged; nobody waits.
		call.WithResend(n.resendOf(msg, hdr.ID, true), n.opts.retry.Base)
		n.pending.Add(call)
	}
	if err := n.push(ctx, msg); err != nil {
		if call != nil {
			n.pending.Take(call.ID)
		}
		return fmt.Errorf("%w: cast %s on %s", err, method, t)
	}
	return nil
}

// resendOf is what the reply-waiter resends for a message with acks: the
// same bytes to the same server, which handles each msg_id once (another
// server of the topic would not know it had run already).
func (n *Node) resendOf(msg sockets.Message, id envelope.MsgID, cast bool) *actors.Resend {
	addrs := []string{msg.Addr}
	if v, ok := n.fronts.LoadAndDelete(id); ok {
		// Router-proxy mode: through each proxy in turn, to the same server.
		addrs = v.([]string)
	}
	return &actors.Resend{Msg: msg, Addrs: addrs, Cast: cast}
}

// fanout sends one FANOUT message, with one msg_id, to every server
// registered for t's topic (t.Server is ignored).
func (n *Node) fanout(ctx context.Context, t Target, method string, args any, deadline time.Time) error {
	t.Server = ""
	_, hdr, body, err := n.prepare(ctx, envelope.KindFanout, t, method, args, deadline)
	if err != nil {
		return err
	}
	if n.opts.pubsub {
		if err := n.publish(ctx, &hdr, body, deadline); err != nil {
			return fmt.Errorf("relay: fanout %s on %s: %w", method, t, err)
		}
		return nil
	}
	addrs, err := n.all(ctx, t, deadline)
	if err != nil {
		return err
	}
	msg := n.message("", &hdr, body, nil) // one encoding for every copy
	for _, addr := range addrs {
		msg.Addr = addr
		if err := n.push(ctx, msg); err != nil {
			return fmt.Errorf("%w: fanout %s on %s to %s", err, method, t, addr)
		}
	}
	return nil
}

// message encodes hdr into the message for the sender; call, when not nil,
// is the pending call (or resent cast) it belongs to.
func (n *Node) message(addr string, hdr *envelope.Header, body []byte, call *actors.Call) sockets.Message {
	msg := sockets.Message{Addr: addr, Header: hdr.Append(nil), Body: body, Deadline: hdr.Deadline}
	if call != nil {
		msg.Ref = call
	}
	return msg
}

// push queues one message for the sender. A full queue is ErrBackPressure
// (or, WithWaitOnFull, a wait until the message's deadline).
func (n *Node) push(ctx context.Context, msg sockets.Message) error {
	if !n.opts.waitOnFull {
		if err := n.requests.TryPush(msg); err != nil {
			return ErrBackPressure
		}
		return nil
	}
	// Wait for room within the message's deadline.
	wctx, cancel := context.WithDeadline(ctx, time.Unix(0, msg.Deadline))
	defer cancel()
	if err := n.requests.Push(wctx, msg); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w (waited until the deadline)", ErrBackPressure)
	}
	return nil
}

// prepare checks the node and the target, picks the server and encodes the
// message.
func (n *Node) prepare(ctx context.Context, kind envelope.Kind, t Target, method string, args any, deadline time.Time) (string, envelope.Header, []byte, error) {
	var hdr envelope.Header
	select {
	case <-n.down:
		return "", hdr, nil, n.downErr()
	default:
	}
	if err := t.check(); err != nil {
		return "", hdr, nil, err
	}
	if method == "" {
		return "", hdr, nil, fmt.Errorf("%w: empty method name for %s", ErrNoSuchMethod, t)
	}
	hdr = envelope.Header{
		Kind: kind, ID: envelope.NewMsgID(), Deadline: deadline.UnixNano(),
		Target: t.envelope(), Method: method, ReplyTo: n.id,
		AckWanted: n.opts.acks && (kind == envelope.KindCall || kind == envelope.KindCast),
	}
	if err := hdr.Validate(); err != nil {
		return "", hdr, nil, fmt.Errorf("%w: %v", ErrBadTarget, err)
	}
	body, err := envelope.EncodeBody(args)
	if err != nil {
		return "", hdr, nil, fmt.Errorf("relay: %s %s on %s: encode arguments %T: %w", kind, method, t, args, err)
	}
	if kind == envelope.KindFanout {
		if n.opts.routerProxy && !n.opts.pubsub {
			return "", hdr, nil, fmt.Errorf("%w: fanout in router-proxy mode needs WithPubSub (publisher proxies): %s", ErrBadTarget, t)
		}
		return "", hdr, body, nil // every server: see fanout
	}
	if n.opts.routerProxy {
		name, fronts, err := n.pickRouted(ctx, t, deadline)
		if err != nil {
			return "", hdr, nil, err
		}
		hdr.Target.Server = name
		if hdr.AckWanted {
			n.fronts.Store(hdr.ID, fronts) // taken by resendOf
		}
		return fronts[0], hdr, body, nil
	}
	addr, err := n.pick(ctx, t, deadline)
	if err != nil {
		return "", hdr, nil, err
	}
	return addr, hdr, body, nil
}

// pick returns the address of the server to send to: the next one
// round-robin among those registered for t. When none is registered it waits
// for one up to the discovery wait (or the deadline, if sooner).
func (n *Node) pick(ctx context.Context, t Target, deadline time.Time) (string, error) {
	addrs, err := n.all(ctx, t, deadline)
	if err != nil {
		return "", err
	}
	return addrs[n.nextIndex(t.key(), len(addrs))], nil
}

// all returns every address registered for t. When none is registered it
// waits for one up to the discovery wait (or the deadline, if sooner).
func (n *Node) all(ctx context.Context, t Target, deadline time.Time) ([]string, error) {
	key := t.key()
	var timer *time.Timer
	for {
		addrs, changed, err := n.routes.lookup(ctx, key)
		if err != nil {
			if errors.Is(err, matchmaker.ErrClosed) {
				return nil, n.downErr()
			}
			return nil, fmt.Errorf("relay: look up %s: %w", t, err)
		}
		if len(addrs) > 0 {
			return addrs, nil
		}
		if timer == nil {
			wait := n.opts.discoveryWait
			if d := time.Until(deadline); d < wait {
				wait = d
			}
			if wait <= 0 {
				return nil, fmt.Errorf("%w: %s", ErrNoServers, t)
			}
			timer = time.NewTimer(wait)
			defer timer.Stop()
		}
		select {
		case <-changed:
		case <-timer.C:
			return nil, fmt.Errorf("%w: %s (waited %v for one to register)", ErrNoServers, t, n.opts.discoveryWait)
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				// The deadline cut the discovery wait short: what the
				// caller needs to know is that nobody serves the target.
				return nil, &noServersError{target: t, ctx: ctx.Err()}
			}
			return nil, ctx.Err()
		case <-n.down:
			return nil, n.downErr()
		}
	}
}

// nextIndex advances the round-robin position of key.
func (n *Node) nextIndex(key matchmaker.Key, size int) int {
	v, ok := n.rr.Load(key)
	if !ok {
		// Start each node at a random place, so that short-lived clients
		// (one call each) do not all pick the same first server.
		start := new(atomic.Uint64)
		start.Store(rand.Uint64N(1 << 32))
		v, _ = n.rr.LoadOrStore(key, start)
	}
	return int((v.(*atomic.Uint64).Add(1) - 1) % uint64(size))
}

// noServersError is ErrNoServers when ctx's deadline ended the discovery
// wait; it matches context.DeadlineExceeded too.
type noServersError struct {
	target Target
	ctx    error
}

func (e *noServersError) Error() string {
	return fmt.Sprintf("%v: %s (none registered before the deadline)", ErrNoServers, e.target)
}

func (e *noServersError) Is(target error) bool { return target == ErrNoServers || target == e.ctx }
