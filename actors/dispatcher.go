package actors

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/relay-dev/relay/envelope"
	"github.com/relay-dev/relay/internal/track"
	"github.com/relay-dev/relay/sockets"
)

// Outcome is what serving one request produced: a reply body, or an error
// code and message (ErrCode non-empty) sent as an ERROR message.
type Outcome struct {
	Body       []byte
	ErrCode    string
	ErrMessage string
}

// ServeFunc runs the handler for a request and returns its outcome. It runs
// in a goroutine of its own, never on a socket goroutine; ctx carries the
// request's deadline and ends when the node closes.
type ServeFunc func(ctx context.Context, in *Inbound) Outcome

// DispatcherConfig configures the dispatcher.
type DispatcherConfig struct {
	Serve    ServeFunc
	Replies  *sockets.Outbox // the poller's outbox
	Requests *sockets.Outbox // the sender's outbox: answers to requests that came through a router proxy
	Group    *track.Group    // handler goroutines are started here
	Base     context.Context // parent of every handler's context; cancelled at close
	Counters *Counters
	Log      *slog.Logger
	// Seen dedups messages sent with AckWanted.
	Seen *Seen
	// AckFilter, when set, decides whether to acknowledge a message (a test
	// hook that loses ACKs on purpose).
	AckFilter func(id envelope.MsgID) bool
	// MaxHandlers bounds the handlers running at once; a request beyond it
	// is refused (a CALL gets ERROR CodeOverloaded, a CAST is counted and
	// logged as failed) instead of piling up goroutines.
	MaxHandlers int64

	running atomic.Int64 // handlers running; outlives dispatcher restarts
}

// CodeOverloaded is the ERROR code of a server whose handlers are all busy.
const CodeOverloaded = "Overloaded"

// DispatcherProps builds the dispatcher.
func DispatcherProps(cfg *DispatcherConfig) *actor.Props {
	unexpected := &throttledLog{log: cfg.Log, interval: time.Second}
	overloaded := &throttledLog{log: cfg.Log, interval: time.Second}
	return props(func() actor.Actor {
		return &dispatcher{cfg: cfg, unexpected: unexpected, overloaded: overloaded}
	})
}

// dispatcher starts a goroutine per request and sends calls' outcomes back
// through the poller. It holds no state, so a restart loses nothing.
type dispatcher struct {
	cfg        *DispatcherConfig
	unexpected *throttledLog
	overloaded *throttledLog
}

func (d *dispatcher) Receive(c actor.Context) {
	in, ok := c.Message().(*Inbound)
	if !ok {
		return
	}
	switch in.Header.Kind {
	case envelope.KindCall, envelope.KindCast, envelope.KindFanout, envelope.KindNotify:
	default:
		d.cfg.Counters.UnexpectedKind.Add(1)
		d.unexpected.Warn("unexpected message kind dropped", "kind", in.Header.Kind, "id", in.Header.ID)
		return
	}
	if in.Header.Kind == envelope.KindCall && (len(in.Header.ReplyTo) == 0 || in.Header.Target.Fanout) {
		// docs/PROTOCOL.md: a CALL must name its reply identity, and
		// cannot be a fanout.
		d.cfg.Counters.Malformed.Add(1)
		d.unexpected.Warn("call without reply_to or with fanout flag dropped", "id", in.Header.ID)
		return
	}
	if dl := in.Header.Deadline; dl != 0 && dl < time.Now().UnixNano() {
		// The caller has given up already: skip the work.
		d.cfg.Counters.ExpiredRequests.Add(1)
		return
	}
	if in.Header.AckWanted && (in.Header.Kind == envelope.KindCall || in.Header.Kind == envelope.KindCast) {
		if !d.ackAndDedup(in) {
			return
		}
	}
	if d.cfg.MaxHandlers > 0 && d.cfg.running.Add(1) > d.cfg.MaxHandlers {
		d.cfg.running.Add(-1)
		d.refuse(in)
		return
	}
	if err := d.cfg.Group.Go(func() {
		if d.cfg.MaxHandlers > 0 {
			defer d.cfg.running.Add(-1)
		}
		d.run(in)
	}); err != nil {
		if d.cfg.MaxHandlers > 0 {
			d.cfg.running.Add(-1)
		}
		// The node is closing; the caller gets ErrTimeout or its own close.
		d.cfg.Log.Debug("request refused: node closing", "id", in.Header.ID)
	}
}

// refuse answers a request that found every handler busy.
func (d *dispatcher) refuse(in *Inbound) {
	d.overloaded.Warn("request refused: too many handlers running", "max", d.cfg.MaxHandlers, "kind", in.Header.Kind)
	if in.Header.Kind != envelope.KindCall {
		d.cfg.Counters.FailedCasts.Add(1)
		return
	}
	e := envelope.Header{Kind: envelope.KindError, ID: in.Header.ID}
	body := envelope.EncodeError(CodeOverloaded, fmt.Sprintf("server busy: %d handlers running", d.cfg.MaxHandlers))
	if err := d.answer(in).TryPush(d.answerMsg(in, e, body)); err != nil {
		d.cfg.Counters.DroppedReplies.Add(1)
	}
}

// ackAndDedup acknowledges a message that asks for it and reports whether
// its handler should run (false for a duplicate; a finished call's
// duplicate gets its remembered reply again).
func (d *dispatcher) ackAndDedup(in *Inbound) bool {
	h := &in.Header
	if len(h.ReplyTo) > 0 && (d.cfg.AckFilter == nil || d.cfg.AckFilter(h.ID)) {
		ack := envelope.Header{Kind: envelope.KindAck, ID: h.ID}
		if err := d.answer(in).TryPush(d.answerMsg(in, ack, nil)); err != nil {
			d.cfg.Counters.DroppedReplies.Add(1)
		}
	}
	first, reply := d.cfg.Seen.Begin(h.ID)
	if first {
		return true
	}
	d.cfg.Counters.Duplicates.Add(1)
	if reply != nil {
		// Answer the resend the way it came (the first way may be gone:
		// a router proxy that died is why it was resent).
		m := *reply
		if in.Via != "" {
			m.Addr = in.Via
		}
		if err := d.answer(in).TryPush(m); err != nil {
			d.cfg.Counters.DroppedReplies.Add(1)
		}
	}
	return false
}

// answer returns the outbox an answer to in goes through: back through the
// router proxy it came from, or the poller's ROUTER.
func (d *dispatcher) answer(in *Inbound) *sockets.Outbox {
	if in.Via != "" {
		return d.cfg.Requests
	}
	return d.cfg.Replies
}

// answerMsg builds an answer (REPLY, ERROR or ACK) to in. Through a router
// proxy the header carries the caller's reply_to, which the proxy routes by.
func (d *dispatcher) answerMsg(in *Inbound, h envelope.Header, body []byte) sockets.Message {
	if in.Via != "" {
		h.ReplyTo = in.Header.ReplyTo
		return sockets.Message{Addr: in.Via, Header: h.Append(nil), Body: body, Deadline: in.Header.Deadline}
	}
	return sockets.Message{To: in.Header.ReplyTo, Header: h.Append(nil), Body: body, Deadline: in.Header.Deadline}
}

// run serves one request. Runs in its own goroutine.
func (d *dispatcher) run(in *Inbound) {
	ctx := d.cfg.Base
	if dl := in.Header.Deadline; dl != 0 {
		rc := newRequestCtx(ctx, time.Unix(0, dl))
		defer rc.release()
		ctx = rc
	}
	out := d.cfg.Serve(ctx, in)
	if in.Header.Kind != envelope.KindCall {
		if in.Header.AckWanted {
			d.cfg.Seen.Done(in.Header.ID, nil)
		}
		return
	}
	if dl := in.Header.Deadline; dl != 0 && dl < time.Now().UnixNano() {
		// The caller has timed out already; a reply would only be late.
		d.cfg.Counters.ExpiredRequests.Add(1)
		return
	}
	h := envelope.Header{Kind: envelope.KindReply, ID: in.Header.ID, Deadline: in.Header.Deadline}
	body := out.Body
	if out.ErrCode != "" {
		h.Kind = envelope.KindError
		body = envelope.EncodeError(out.ErrCode, out.ErrMessage)
	}
	m := d.answerMsg(in, h, body)
	if in.Header.AckWanted {
		d.cfg.Seen.Done(in.Header.ID, &m)
	}
	if err := d.answer(in).Push(ctx, m); err != nil {
		d.cfg.Counters.DroppedReplies.Add(1)
		d.cfg.Log.Warn("reply dropped", "id", in.Header.ID, "err", err)
	}
}
