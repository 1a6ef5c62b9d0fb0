package relay

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/relay-dev/relay/actors"
	"github.com/relay-dev/relay/envelope"
)

// outcome is what serving one request produced: the handler's result, or
// an error code and message (code non-empty) sent as an ERROR.
type outcome struct {
	result        any
	code, message string
	header        Header // the answer's headers
}

// serve resolves and runs the handler of one inbound request and sends its
// answer. It is the handler pool's work and runs in a worker goroutine.
func (n *Node) serve(in *actors.Inbound) {
	v := &in.Rec
	kind := v.Kind()
	if kind == envelope.KindNotify {
		n.deliver(in)
		return
	}
	var ctx context.Context = n.base
	var rc *requestCtx
	if dl := v.Deadline(); dl != 0 || kind == envelope.KindCall {
		rc = newRequestCtx(n.base, deadlineTime(dl))
		if kind == envelope.KindCall {
			// Cancellable by its caller (a CANCEL record).
			rc.caller = v.ReplyTo()
			n.running.add(v.ID(), rc)
			defer n.running.remove(v.ID(), rc)
		}
		defer rc.release()
		ctx = rc
	}
	out := n.run(ctx, in, kind)
	acked := v.AckWanted() && (kind == envelope.KindCall || kind == envelope.KindCast)
	if kind == envelope.KindCall && rc.cancelled() {
		// The caller has gone: nobody waits for an answer.
		n.counters.Cancelled.Add(1)
		if acked {
			n.recordHandled(v.ID(), nil)
		}
		return
	}
	if kind != envelope.KindCall {
		switch {
		case acked && out.code == CodeNoSuchMethod:
			// Not taken: no ACK, so that its sender resends (to a server
			// that serves it by then) or reports it undelivered at its
			// deadline, rather than learning nothing of the drop.
			n.ledger.Forget(v.ID())
		case acked && n.recordHandled(v.ID(), nil):
			// A cast with acks is acknowledged now that its handler ran,
			// and once that is on record: a crash before makes its
			// sender resend.
			n.intake.Ack(in)
		}
		return
	}
	if dl := v.Deadline(); dl != 0 && dl < time.Now().UnixNano() {
		// The caller has timed out already; a reply would only be late.
		n.counters.ExpiredRequests.Add(1)
		if acked {
			n.recordHandled(v.ID(), nil)
		}
		return
	}
	rec := n.answer(in, out)
	if acked && !n.recordHandled(v.ID(), rec) {
		return // not on record: the caller resends, and the handler runs again
	}
	if err := n.answers.Send(in, rec); err != nil {
		n.counters.DroppedReplies.Add(1)
		n.dropped.Warn("reply dropped: send queue full", "id", v.ID(), "err", err)
	}
}

// recordHandled records in the ledger that the handler of the request with id
// ran, with its answer; it reports whether that is on record (a durable
// ledger can fail to write).
func (n *Node) recordHandled(id envelope.MsgID, reply []byte) bool {
	if err := n.ledger.Done(id, reply); err != nil {
		n.failed.Warn("request handled but not recorded; its resend will run it again", "id", id, "err", err)
		return false
	}
	return true
}

// answer encodes the REPLY (the result encoded in place) or ERROR record
// that answers in.
func (n *Node) answer(in *actors.Inbound, out outcome) []byte {
	h := n.answers.Header(in, envelope.KindReply)
	if len(out.header) > 0 {
		meta, err := appendMeta(nil, out.header)
		if err != nil {
			out = outcome{code: CodeBadReply, message: fmt.Sprintf("reply headers of %s: %v", in.Rec.Method(), err)}
		}
		h.Meta = meta
	}
	if out.code == "" {
		b, mark := h.BeginRecord(make([]byte, 0, 256))
		b, err := envelope.AppendBody(b, out.result)
		if err == nil {
			return envelope.EndRecord(b, mark)
		}
		out = outcome{code: CodeBadReply, message: fmt.Sprintf("encode result of %s (%T): %v", in.Rec.Method(), out.result, err)}
	}
	h.Kind = envelope.KindError
	return h.AppendRecord(nil, envelope.EncodeError(out.code, out.message))
}

// run resolves and runs the handler of a request.
func (n *Node) run(ctx context.Context, in *actors.Inbound, kind envelope.Kind) outcome {
	v := &in.Rec
	oneWay := kind != envelope.KindCall
	m, s, err := n.resolve(v)
	if err != nil && kind == envelope.KindCall && string(v.Method()) == InfoMethod {
		return outcome{result: n.Info()}
	}
	if err != nil {
		m, s, err = n.resolveLate(ctx, v, err)
	}
	if err != nil {
		if oneWay {
			n.counters.FailedCasts.Add(1)
			n.failed.Warn("cast dropped: no such method", "err", err)
		}
		return outcome{code: CodeNoSuchMethod, message: err.Error()}
	}
	req := &Request{
		Method: m.name, Target: s.requestTarget(v), ID: v.ID().String(),
		Deadline: deadlineTime(v.Deadline()), Cast: oneWay, Kind: requestKind(kind, v), body: v.Body(),
		Caller:  Peer{Key: in.Caller, Name: in.CallerName},
		Attempt: int(v.Attempt()), Redelivered: v.Attempt() > 0,
	}
	if meta := v.Meta(); len(meta) > 0 {
		if req.Header, err = decodeMeta(meta); err != nil {
			n.counters.Malformed.Add(1)
			n.dropped.Warn("request headers dropped", "method", m.name, "err", err)
		}
	}
	res, err := m.h(ctx, req)
	if err != nil {
		if oneWay {
			n.counters.FailedCasts.Add(1)
			n.failed.Warn("cast handler failed", "method", m.name, "err", err)
		}
		return outcome{code: errorCode(err), message: errorMessage(err), header: req.reply}
	}
	return outcome{result: res, header: req.reply}
}

// safe returns h with its panics turned into errors of code "panic",
// counted and logged, so that interceptors around it see them as
// outcomes.
func (n *Node) safe(h Handler) Handler {
	return func(ctx context.Context, req *Request) (res any, err error) {
		defer func() {
			if r := recover(); r != nil {
				n.counters.HandlerPanics.Add(1)
				n.failed.Error("handler panicked", "method", req.Method, "target", req.Target.String(), "panic", r, "stack", string(debug.Stack()))
				res, err = nil, &RemoteError{Code: CodePanic, Message: fmt.Sprintf("handler %s panicked: %v", req.Method, r)}
			}
		}()
		return h(ctx, req)
	}
}
