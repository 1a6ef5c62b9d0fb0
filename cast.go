package relay

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/relay-dev/relay/actors"
	"github.com/relay-dev/relay/envelope"
	"github.com/relay-dev/relay/store"
)

// Cast sends args to method on one server of t without waiting for a
// result. It returns once the message is queued for its server: a full
// queue is ErrBackPressure (or, WithWaitOnFull, a wait until the deadline),
// never a drop later. A queued cast is sent when the server takes it; one
// whose server stays unreachable past its deadline (ctx's, or
// WithCallTimeout from now) is dropped, counted in Stats().DroppedCasts and
// logged. With acks it is resent until acknowledged. It carries ctx's
// headers (WithHeader). Errors: ErrNoServers, ErrBackPressure,
// ErrBadTarget, ErrBadHeader, ErrClosed, ctx.Err().
func (n *Node) Cast(ctx context.Context, t Target, method string, args any) error {
	now := time.Now()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = now.Add(n.opts.callTimeout)
	}
	if n.invoke != nil {
		kind := KindCast
		if t.Fanout {
			kind = KindFanout
		}
		return n.intercepted(ctx, kind, t, method, deadline, args, nil)
	}
	return n.cast(ctx, t, method, args, now, deadline, outgoingOf(ctx))
}

// cast is Cast begun at now, with its deadline and the headers to send
// (out, nil for none).
func (n *Node) cast(ctx context.Context, t Target, method string, args any, now, deadline time.Time, out *outgoing) error {
	if t.Fanout {
		return n.fanout(ctx, t, method, args, deadline, out)
	}
	r, err := n.route(ctx, envelope.KindCast, t, method, now, deadline)
	if err != nil {
		return err
	}
	switch srv := n.local(r.addr); {
	case srv != nil && !n.opts.acks:
		err = n.castLocal(srv, t, r, method, args, deadline, out)
	case !n.opts.acks:
		err = n.castOnce(ctx, t, r, method, args, deadline, out)
	default:
		return n.castAcked(ctx, t, r, method, args, deadline, out)
	}
	if err != nil {
		return fmt.Errorf("%w: cast %s on %s", err, method, t)
	}
	return nil
}

// castLocal hands a cast without acks over to srv, a node of this process
// (WithInproc), with the headers of out (nil: none), as a cast sent over
// a socket carries them.
func (n *Node) castLocal(srv *Node, t Target, r route, method string, args any, deadline time.Time, out *outgoing) error {
	h := n.header(envelope.KindCast, envelope.NewMsgID(), t, r, method, deadline)
	buf := getRecord()
	defer putRecord(buf)
	err := setMeta(&h, out)
	if err == nil {
		*buf, err = n.record(*buf, &h, args)
	}
	if err == nil {
		err = n.handOver(srv, *buf)
	}
	return err
}

// castOnce queues a cast without acks for its server: sent once, in a
// pooled buffer the sender gives back.
func (n *Node) castOnce(ctx context.Context, t Target, r route, method string, args any, deadline time.Time, out *outgoing) error {
	h := n.header(envelope.KindCast, envelope.NewMsgID(), t, r, method, deadline)
	buf := getRecord()
	err := setMeta(&h, out)
	if err == nil {
		*buf, err = n.record(*buf, &h, args)
	}
	if err == nil {
		err = n.pushPooled(ctx, r.send(), buf, deadline)
	}
	if err != nil {
		putRecord(buf)
	}
	return err
}

// castAcked sends a cast with acks: resent by the resender until
// acknowledged (with a data directory, stored first); nobody waits.
func (n *Node) castAcked(ctx context.Context, t Target, r route, method string, args any, deadline time.Time, out *outgoing) error {
	c := n.pending.Get(deadline)
	c.Addr = r.send()
	h := n.header(envelope.KindCast, c.ID, t, r, method, deadline)
	err := setMeta(&h, out)
	if err == nil {
		c.Rec, err = n.record(c.Rec[:0], &h, args)
	}
	if err != nil {
		return err
	}
	n.resender.Resent(c, r.resendAddrs(), true)
	if n.store != nil {
		// A durable cast: on disk before Cast returns, sent again by the
		// next process if this one ends before it is acknowledged.
		if err := n.store.SaveCast(store.Cast{ID: c.ID, Deadline: deadline, Addrs: r.resendAddrs(), Rec: c.Rec}); err != nil {
			return fmt.Errorf("relay: cast %s on %s: %w", method, t, err)
		}
	}
	// Keep the server's connection while the ACK is awaited: the ACK may
	// come (OnFinish) before pushAwaited has returned.
	var (
		mu       sync.Mutex
		answered func()
		finished bool
	)
	c.OnFinish(func(res actors.Result) {
		n.settled(c, res, n.store != nil)
		mu.Lock()
		finished = true
		done := answered
		mu.Unlock()
		if done != nil {
			done()
		}
	})
	n.pending.Add(c)
	done, err := n.pushAwaited(ctx, r.send(), c.Rec, deadline)
	if err != nil {
		n.pending.Take(c.ID)
		return fmt.Errorf("%w: cast %s on %s", err, method, t)
	}
	mu.Lock()
	if finished {
		mu.Unlock()
		done()
	} else {
		answered = done
		mu.Unlock()
	}
	n.resender.Schedule(c)
	return nil
}

// fanout sends one FANOUT message, with one msg_id, to every server
// registered for t's topic (t.Server is ignored), the topology's way.
func (n *Node) fanout(ctx context.Context, t Target, method string, args any, deadline time.Time, out *outgoing) error {
	t.Server = ""
	if err := n.usable(t, method); err != nil {
		return err
	}
	return n.topo.fanout(ctx, t, method, args, deadline, out.headers())
}
