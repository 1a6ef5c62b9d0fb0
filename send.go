package relay

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/relay-dev/relay/envelope"
	"github.com/relay-dev/relay/sockets"
)

// header is the header of a request of kind to t.
func (n *Node) header(kind envelope.Kind, id envelope.MsgID, t Target, r route, method string, deadline time.Time) envelope.Header {
	h := envelope.Header{
		Kind: kind, ID: id, Deadline: deadline.UnixNano(),
		Target: t.envelope(), Method: method, ReplyTo: n.id,
		AckWanted: n.opts.acks && (kind == envelope.KindCall || kind == envelope.KindCast),
	}
	if r.server != "" {
		h.Target.Server = r.server
	}
	return h
}

// record appends the record of h and the encoding of args to b.
func (n *Node) record(b []byte, h *envelope.Header, args any) ([]byte, error) {
	if err := h.Validate(); err != nil {
		return b, fmt.Errorf("%w: %v", ErrBadTarget, err)
	}
	start := len(b)
	b, mark := h.BeginRecord(b)
	b, err := envelope.AppendBody(b, args)
	if err != nil {
		return b, fmt.Errorf("relay: %v %s on %s: encode arguments %T: %w", h.Kind, h.Method, h.Target.Topic, args, err)
	}
	if size := len(b) - start; int64(size) > n.opts.maxMessageSize {
		return b[:start], fmt.Errorf("%w: %v %s on %s is %d bytes, WithMaxMessageSize is %d (receivers drop larger messages; raise it on both sides)",
			ErrTooLarge, h.Kind, h.Method, h.Target.Topic, size, n.opts.maxMessageSize)
	}
	return envelope.EndRecord(b, mark), nil
}

// fanoutRecord encodes the FANOUT of method and args to t, with headers;
// it returns its header too.
func (n *Node) fanoutRecord(t Target, method string, args any, deadline time.Time, headers Header) (envelope.Header, []byte, error) {
	h := n.header(envelope.KindFanout, envelope.NewMsgID(), t, route{}, method, deadline)
	if err := setHeaders(&h, headers); err != nil {
		return h, nil, err
	}
	rec, err := n.record(nil, &h, args)
	return h, rec, err
}

// notifyRecord encodes a NOTIFY of header h and body (the notification,
// encoded), with headers.
func notifyRecord(h *envelope.Header, body []byte, headers Header) ([]byte, error) {
	if err := setHeaders(h, headers); err != nil {
		return nil, err
	}
	if err := h.Validate(); err != nil {
		return nil, fmt.Errorf("%w: notify: %v", ErrBadTarget, err)
	}
	return h.AppendRecord(nil, body), nil
}

// records are the buffers of casts' records, given back by the sender
// once it has copied them into a batch. The pool holds *[]byte, and the
// message carries the pointer (as its Ref) back, so that a round trip
// through the pool allocates nothing.
var records = sync.Pool{New: func() any { return new([]byte) }}

// getRecord returns an empty record buffer and its handle.
func getRecord() *[]byte {
	b := records.Get().(*[]byte)
	*b = (*b)[:0]
	return b
}

// putRecord gives a record buffer back by its handle.
func putRecord(ref any) {
	if b, ok := ref.(*[]byte); ok && cap(*b) <= 64<<10 {
		records.Put(b)
	}
}

// pushPooled is push for a record from getRecord: the sender gives it back
// once it has sent (copied) it.
func (n *Node) pushPooled(ctx context.Context, addr string, buf *[]byte, deadline time.Time) error {
	_, err := n.pushMessage(ctx, addr, sockets.Message{Rec: *buf, Deadline: deadline.UnixNano(), Ref: buf, Pooled: true})
	return err
}

// push queues a record for the peer at addr. A full queue is
// ErrBackPressure (or, WithWaitOnFull, a wait until the deadline).
func (n *Node) push(ctx context.Context, addr string, rec []byte, deadline time.Time) error {
	_, err := n.pushMessage(ctx, addr, sockets.Message{Rec: rec, Deadline: deadline.UnixNano()})
	return err
}

// pushAwaited is push for a request whose answer (reply or ACK) comes back
// from the peer: the peer's connection is kept until done is called.
func (n *Node) pushAwaited(ctx context.Context, addr string, rec []byte, deadline time.Time) (done func(), err error) {
	p, err := n.pushMessage(ctx, addr, sockets.Message{Rec: rec, Deadline: deadline.UnixNano()})
	if err != nil {
		return nil, err
	}
	p.Awaited()
	return p.Answered, nil
}

func (n *Node) pushMessage(ctx context.Context, addr string, m sockets.Message) (*sockets.Peer, error) {
	if !n.opts.waitOnFull {
		p, err := n.peers.TryPush(addr, m)
		switch {
		case errors.Is(err, sockets.ErrTooManyPeers):
			return nil, fmt.Errorf("%w: %v", ErrTooManyConnections, err)
		case err != nil:
			return nil, ErrBackPressure
		}
		return p, nil
	}
	wctx, cancel := context.WithDeadline(ctx, time.Unix(0, m.Deadline))
	defer cancel()
	p, err := n.peers.Push(wctx, addr, m)
	if err != nil {
		if errors.Is(err, sockets.ErrTooManyPeers) {
			return nil, fmt.Errorf("%w: %v", ErrTooManyConnections, err)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w (waited until the deadline)", ErrBackPressure)
	}
	return p, nil
}
