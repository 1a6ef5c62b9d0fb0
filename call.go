package relay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/relay-dev/relay/actors"
	"github.com/relay-dev/relay/envelope"
	"github.com/relay-dev/relay/sockets"
)

// Call sends args to method on one server of t and waits for its reply,
// which it decodes into reply (a pointer; nil to discard). It returns
// exactly one of: nil (reply filled), a *RemoteError (the handler's error or
// panic), an error matching ErrNoSuchMethod, ErrTimeout (also
// context.DeadlineExceeded when ctx's deadline fired), ErrNoServers,
// ErrModeMismatch (the servers run in router-proxy mode and this node
// not, or the reverse), ErrUnauthorized (CURVE: refused by the server, or
// no trusted server),
// ErrBackPressure, ErrBadTarget, ErrBadHeader, ErrClosed, or ctx.Err()
// when ctx was cancelled. The deadline is ctx's, or WithCallTimeout from
// now. When ctx is cancelled before the answer, Call returns
// context.Canceled at once and tells the server, which cancels the
// handler's context. The call carries ctx's headers (WithHeader), and
// stores its answer's in WithReplyHeader's destination.
func (n *Node) Call(ctx context.Context, t Target, method string, args, reply any) error {
	start := time.Now()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = start.Add(n.opts.callTimeout)
	}
	if n.invoke != nil {
		return n.intercepted(ctx, KindCall, t, method, deadline, args, reply)
	}
	return n.call(ctx, t, method, args, reply, start, deadline, outgoingOf(ctx))
}

// call is Call begun at start, with its deadline, and the headers to send
// and where to put the answer's (out, nil for none).
func (n *Node) call(ctx context.Context, t Target, method string, args, reply any, start, deadline time.Time, out *outgoing) error {
	_, ctxDeadline := ctx.Deadline()
	if t.Fanout {
		return fmt.Errorf("%w: Call on a fanout target %s (fanout is for casts)", ErrBadTarget, t)
	}
	r, err := n.route(ctx, envelope.KindCall, t, method, start, deadline)
	if err != nil {
		return err
	}
	c := n.pending.Get(deadline)
	c.Addr = r.send() // its answer is taken from this peer only
	h := n.header(envelope.KindCall, c.ID, t, r, method, deadline)
	if err = setMeta(&h, out); err == nil {
		c.Rec, err = n.record(c.Rec[:0], &h, args)
	}
	if err != nil {
		n.pending.Put(c)
		return err
	}
	if srv := n.local(r.addr); srv != nil && !h.AckWanted {
		res, err := n.localCall(ctx, srv, c, ctxDeadline, deadline.Sub(start))
		if err != nil {
			n.pending.Put(c)
			return fmt.Errorf("%w: call %s on %s", err, method, t)
		}
		if res.Err == context.Canceled {
			srv.onCancel(c.ID, n.id)
		}
		err = n.outcome(res, t, method, reply, start, ctxDeadline)
		if out != nil && out.reply != nil {
			*out.reply = n.replyHeader(res)
		}
		n.pending.Put(c)
		return err
	}
	switch {
	case h.AckWanted && len(r.servers) > 1:
		n.resender.ResentFailover(c, r.servers)
	case h.AckWanted:
		n.resender.Resent(c, r.resendAddrs(), false)
	}
	n.pending.Add(c)
	answered, err := n.pushAwaited(ctx, r.send(), c.Rec, deadline)
	if err != nil {
		n.pending.Take(c.ID)
		c.Rec = nil // the queue may still hold it
		n.pending.Put(c)
		return fmt.Errorf("%w: call %s on %s", err, method, t)
	}
	if h.AckWanted {
		n.resender.Schedule(c)
	}
	res := n.await(ctx, c, ctxDeadline, deadline.Sub(start))
	answered()
	if res.Err == context.Canceled {
		n.cancelRemote(&h, r.send())
	}
	err = n.outcome(res, t, method, reply, start, ctxDeadline)
	if out != nil && out.reply != nil {
		*out.reply = n.replyHeader(res)
	}
	if res.Err != nil && !h.AckWanted {
		c.Rec = nil // not answered: the request may still be queued
	}
	n.pending.Put(c) // a resent call is left to the resender, not reused
	return err
}

// await waits for the one outcome of c: its answer, its deadline, ctx's
// end, or the node going down. The deadline is the call's own: ctx's, or a
// timer of the call's when ctx has none.
// timeout is how long from now the deadline is (the caller knows the time).
func (n *Node) await(ctx context.Context, c *actors.Call, ctxDeadline bool, timeout time.Duration) actors.Result {
	var expired <-chan time.Time
	if !ctxDeadline {
		t := c.Timer()
		t.Reset(timeout)
		defer t.Stop()
		expired = t.C
	}
	var err error
	select {
	case res := <-c.Done():
		return res
	case <-expired:
		err = ErrTimeout
	case <-ctx.Done():
		err = ctx.Err()
	case <-n.down:
		err = n.downErr()
	}
	if n.pending.Take(c.ID) == c {
		return actors.Result{Err: err}
	}
	return <-c.Done() // the answer is on its way: whoever took the call delivers it
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
		case errors.Is(res.Err, sockets.ErrUnauthorized):
			return fmt.Errorf("%w: call %s on %s: %v", ErrUnauthorized, method, t, res.Err)
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
		if code == CodeUnauthorized {
			return fmt.Errorf("%w: call %s on %s: %s", ErrUnauthorized, method, t, msg)
		}
		return &RemoteError{Code: code, Message: msg}
	}
	if res.Kind != envelope.KindReply {
		return fmt.Errorf("relay: call %s on %s: answered with %v instead of a reply", method, t, res.Kind)
	}
	if reply == nil {
		return nil
	}
	if err := envelope.DecodeBody(res.Body, reply); err != nil {
		return fmt.Errorf("relay: call %s on %s: decode reply into %T: %w", method, t, reply, err)
	}
	return nil
}
