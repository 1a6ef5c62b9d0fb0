package actors

import (
	"errors"
	"log/slog"
	"time"

	"github.com/relay-dev/relay/curve"
	"github.com/relay-dev/relay/envelope"
	"github.com/relay-dev/relay/sockets"
)

// Answers sends answers (REPLY, ERROR, ACK) back the way their request
// came: down the connection it arrived on (the node's ROUTER, to the
// routing id it came from), or back through the router proxy it came
// through.
type Answers struct {
	Replies *sockets.Outbox // the router's
	Peers   *sockets.Peers  // the dealers'
}

// Header returns the header of an answer of kind k to in. Through a router
// proxy it carries the request's reply_to, which the proxy routes by.
func (a *Answers) Header(in *Inbound, k envelope.Kind) envelope.Header {
	h := envelope.Header{Kind: k, ID: in.Rec.ID()}
	if in.Via != "" {
		h.ReplyTo = in.Rec.ReplyTo()
	}
	return h
}

// Send queues rec, an answer to in, without waiting: a full queue is
// ErrOutboxFull or ErrBackPressure.
func (a *Answers) Send(in *Inbound, rec []byte) error {
	if in.Local != nil {
		in.Local(rec)
		return nil
	}
	if in.Via != "" {
		_, err := a.Peers.TryPush(in.Via, sockets.Message{Rec: rec, Deadline: in.Rec.Deadline()})
		return err
	}
	return a.Replies.TryPush(sockets.Message{To: in.From, Rec: rec, Deadline: in.Rec.Deadline()})
}

// Intake turns what the socket loops receive into work: requests for the
// handler pool (after the checks of docs/PROTOCOL.md §7, acknowledgement
// and dedup), answers for pending calls, published messages once each.
// What it drops it counts. Its methods run in the loops' goroutines and
// never block.
type Intake struct {
	Pool    *Pool
	Pending *Pending
	Answers *Answers
	// Ledger dedups requests sent with AckWanted; Dedup published messages.
	Ledger Ledger
	Dedup  *Dedup
	// AckFilter, when set, decides whether to acknowledge a message (a
	// test hook that loses ACKs on purpose).
	AckFilter func(id envelope.MsgID) bool
	// Cancel handles a CANCEL record (the caller of the call id, whose
	// reply_to is caller, gave up). It runs in the loop's goroutine and
	// must not block. (It takes fields, not the View: a View passed to a
	// func value would move every loop's Reader to the heap.)
	Cancel func(id envelope.MsgID, caller []byte)
	// Authorize, with CURVE on, names the caller of a request by its
	// public key: the User-Id of the router's connection, or through a
	// router proxy the key the proxy stamped. ok false refuses the request
	// (the key left the allow-list, or there is none). Nil without CURVE.
	Authorize func(k curve.Key) (name string, ok bool)
	// UserID says that the router's batches carry each message's User-Id
	// as a third frame (the router uses CURVE).
	UserID bool
	// ViaProxies accepts requests on the DEALERs (router-proxy mode: they
	// come through the proxies); otherwise a request on a DEALER (a server
	// this node called, sending requests back) is dropped and counted.
	ViaProxies bool
	Counters   *Counters
	Log        *slog.Logger

	malformed, unexpected, version, refused *ThrottledLog

	// Scratch space of each loop (one goroutine each; Pool.Submit copies).
	fromRouter, fromDealer, fromSub []Inbound
}

// Init sets up the intake's rate-limited logs; call it once before use.
func (i *Intake) Init() {
	i.malformed = NewThrottledLog(i.Log, time.Second)
	i.unexpected = NewThrottledLog(i.Log, time.Second)
	i.version = NewThrottledLog(i.Log, time.Second)
	i.refused = NewThrottledLog(i.Log, time.Second)
}

// FromRouter takes a batch of the node's ROUTER: [routing-id, payload]
// messages of requests. It reports whether the router should pause.
func (i *Intake) FromRouter(b sockets.Batch) (pause bool) {
	ins := i.fromRouter[:0]
	var fbuf [5][]byte
	var r envelope.Reader
	now := time.Now().UnixNano()
	want := 2
	if i.UserID {
		want = 3
	}
	for {
		frames, ok := b.Next(fbuf[:0])
		if !ok {
			break
		}
		if len(frames) != want {
			i.bad(envelope.ErrFrames, "frames", len(frames)-(want-2))
			continue
		}
		from, caller := frames[0], []byte(nil)
		if i.UserID {
			caller = frames[2]
		}
		for r.Reset(frames[1]); r.Next(); {
			ins = i.request(ins, r.View(), from, "", nil, now, caller)
		}
		if err := r.Err(); err != nil {
			i.bad(err)
		}
	}
	pause = i.Pool.Submit(ins)
	clear(ins)
	i.fromRouter = ins[:0]
	return pause
}

// FromDealer takes a batch of the DEALER towards addr: answers to this
// node's calls, and in router-proxy mode requests for its servers. It
// reports whether that DEALER should pause.
func (i *Intake) FromDealer(addr string, b sockets.Batch) (pause bool) {
	ins := i.fromDealer[:0]
	var fbuf [4][]byte
	var r envelope.Reader
	now := int64(0) // read when a request needs it
	for {
		frames, ok := b.Next(fbuf[:0])
		if !ok {
			break
		}
		if len(frames) != 1 {
			i.bad(envelope.ErrFrames, "frames", len(frames), "peer", addr)
			continue
		}
		for r.Reset(frames[0]); r.Next(); {
			v := r.View()
			switch v.Kind() {
			case envelope.KindReply, envelope.KindError, envelope.KindAck:
				i.Pending.Answer(v, addr, i.Counters)
			case envelope.KindCall, envelope.KindCast, envelope.KindCancel:
				if !i.ViaProxies {
					i.Counters.UnexpectedKind.Add(1)
					i.unexpected.Warn("request from a server this node called dropped (requests come to the router)", "peer", addr, "kind", v.Kind())
					continue
				}
				if now == 0 {
					now = time.Now().UnixNano()
				}
				ins = i.request(ins, v, nil, addr, nil, now, nil)
			default:
				i.Counters.UnexpectedKind.Add(1)
				i.unexpected.Warn("unexpected message kind dropped", "peer", addr, "kind", v.Kind())
			}
		}
		if err := r.Err(); err != nil {
			i.bad(err, "peer", addr)
		}
	}
	pause = i.Pool.Submit(ins)
	clear(ins)
	i.fromDealer = ins[:0]
	return pause
}

// ErrFull is what Local returns when the handler queue is full: the caller
// gets back-pressure at once.
var ErrFull = errorString("actors: handler queue full")

// Local takes a request record handed over by a node of the same process,
// whose answers go to answer; caller is that node's CURVE public key in
// Z85 (nil without CURVE), authorized as a connection's User-Id is. It
// returns ErrFull, taking nothing, when the handler queue is full.
func (i *Intake) Local(rec []byte, answer func([]byte), caller []byte) error {
	if i.Pool.Full() {
		return ErrFull
	}
	var buf [1]Inbound
	ins := buf[:0]
	var r envelope.Reader
	now := time.Now().UnixNano()
	for r.Reset(rec); r.Next(); {
		ins = i.request(ins, r.View(), nil, "", answer, now, caller)
	}
	if err := r.Err(); err != nil {
		i.bad(err)
	}
	i.Pool.Submit(ins)
	return nil
}

// Answer takes answer records handed over by a node of the same process.
func (i *Intake) Answer(rec []byte) {
	var r envelope.Reader
	for r.Reset(rec); r.Next(); {
		i.Pending.Answer(r.View(), "", i.Counters)
	}
}

// FromSubscriber takes a batch of the fanout-subscriber: [prefix, payload]
// messages of FANOUT and NOTIFY records, each handled once per (msg_id,
// server) even when resent through another proxy.
func (i *Intake) FromSubscriber(b sockets.Batch) {
	ins := i.fromSub[:0]
	var fbuf [4][]byte
	var r envelope.Reader
	for {
		frames, ok := b.Next(fbuf[:0])
		if !ok {
			break
		}
		if len(frames) != 2 {
			i.bad(envelope.ErrFrames, "frames", len(frames))
			continue
		}
		for r.Reset(frames[1]); r.Next(); {
			v := r.View()
			switch k := v.Kind(); {
			case k != envelope.KindFanout && k != envelope.KindNotify:
				i.Counters.UnexpectedKind.Add(1)
				i.unexpected.Warn("unexpected published message kind dropped", "kind", k)
			case !i.Dedup.First(v.ID(), string(v.Server())):
				i.Counters.Duplicates.Add(1)
			default:
				ins = append(ins, Inbound{Rec: *v})
			}
		}
		if err := r.Err(); err != nil {
			i.bad(err)
		}
	}
	i.Pool.Submit(ins)
	clear(ins)
	i.fromSub = ins[:0]
}

// bad counts and logs (rate-limited) a malformed message, or one of a
// protocol version this node does not speak.
func (i *Intake) bad(err error, args ...any) {
	if errors.Is(err, envelope.ErrVersion) {
		i.Counters.UnknownVersion.Add(1)
		i.version.Warn("message of an unknown protocol version dropped (is the peer an older relay?)", append(args, "err", err)...)
		return
	}
	i.Counters.Malformed.Add(1)
	i.malformed.Warn("malformed message dropped", append(args, "err", err)...)
}

// request checks a request record and appends it to ins when a handler
// should see it; local, for a request handed over by a node of the same
// process, takes its answers. caller is the User-Id of the connection it came on (the
// caller's CURVE key in Z85), or for a node of the same process its key.
func (i *Intake) request(ins []Inbound, v *envelope.View, from []byte, via string, local func([]byte), now int64, caller []byte) []Inbound {
	k := v.Kind()
	switch k {
	case envelope.KindCall, envelope.KindCast, envelope.KindFanout, envelope.KindNotify:
	case envelope.KindCancel:
		if i.Authorize != nil && !i.authorize(&Inbound{Rec: *v, From: from, Via: via, Local: local}, caller) {
			return ins
		}
		if i.Cancel != nil {
			i.Cancel(v.ID(), v.ReplyTo())
		}
		return ins
	default:
		i.Counters.UnexpectedKind.Add(1)
		i.unexpected.Warn("unexpected message kind dropped", "kind", k, "id", v.ID())
		return ins
	}
	if k == envelope.KindCall && (len(v.ReplyTo()) == 0 || v.Fanout()) {
		// docs/PROTOCOL.md: a CALL must name its reply identity, and
		// cannot be a fanout.
		i.Counters.Malformed.Add(1)
		i.unexpected.Warn("call without reply_to or with fanout flag dropped", "id", v.ID())
		return ins
	}
	if dl := v.Deadline(); dl != 0 && dl < now {
		// The caller has given up already: skip the work.
		i.Counters.ExpiredRequests.Add(1)
		return ins
	}
	in := Inbound{Rec: *v, From: from, Via: via, Local: local}
	if i.Authorize != nil && !i.authorize(&in, caller) {
		return ins
	}
	if v.AckWanted() && (k == envelope.KindCall || k == envelope.KindCast) && !i.ackAndDedup(&in) {
		return ins
	}
	return append(ins, in)
}

// CodeUnauthorized is the ERROR code of a CALL refused because its
// caller's key is not (or no longer) on the server's allow-list.
const CodeUnauthorized = "Unauthorized"

// authorize names the caller of in by its CURVE key, or refuses in
// (counted, logged, and a CALL answered Unauthorized) and reports false.
func (i *Intake) authorize(in *Inbound, caller []byte) bool {
	var (
		k  curve.Key
		ok bool
	)
	if in.Via == "" {
		k, ok = curve.KeyOfZ85(caller)
	} else if _, _, stamped, err := envelope.ParseStamp(in.Rec.ReplyTo()); err == nil && len(stamped) == len(k) {
		k, ok = curve.Key(stamped), true
	}
	var name string
	if ok {
		name, ok = i.Authorize(k)
	}
	if ok {
		in.Caller, in.CallerName = k, name
		return true
	}
	i.Counters.Refused.Add(1)
	i.refused.Warn("request refused: its caller's CURVE key is not on the allow-list", "key", keyText(k), "via", in.Via, "kind", in.Rec.Kind(), "id", in.Rec.ID())
	if in.Rec.Kind() == envelope.KindCall {
		h := i.Answers.Header(in, envelope.KindError)
		if err := i.Answers.Send(in, h.AppendRecord(nil, envelope.EncodeError(CodeUnauthorized, "caller's key is not on the server's allow-list"))); err != nil {
			i.Counters.DroppedReplies.Add(1)
		}
	}
	return false
}

// keyText is a public key for a log ("none" for the zero key).
func keyText(k curve.Key) string {
	if k.IsZero() {
		return "none"
	}
	return k.String()
}

// CodeReplyUnavailable is the ERROR code of a call with acks answered
// again after its handler ran, when its answer was not kept (the ledger's
// byte bound): the handler ran once, but the answer is gone.
const CodeReplyUnavailable = "ReplyUnavailable"

// ackAndDedup looks a request that asks for acks up in the ledger and
// reports whether its handler should run. A resend of one that runs now
// gets nothing yet (a call: an ACK, "taken, running"); a resend of one
// that ran gets its ACK (a cast) or its answer (a call) again. The first arrival is acknowledged, or answered,
// only once its handler has run (serve).
func (i *Intake) ackAndDedup(in *Inbound) bool {
	state, reply, evicted := i.Ledger.Begin(in.Rec.ID())
	if state == New {
		return true
	}
	i.Counters.Duplicates.Add(1)
	if state == Running {
		if in.Rec.Kind() == envelope.KindCall {
			i.Ack(in) // taken, running: the caller may slow its resends
		}
		return false
	}
	if in.Rec.Kind() != envelope.KindCall {
		i.Ack(in)
		return false
	}
	if reply == nil && evicted {
		h := i.Answers.Header(in, envelope.KindError)
		reply = h.AppendRecord(nil, envelope.EncodeError(CodeReplyUnavailable,
			"the handler ran; its answer was not kept (the server's dedup byte bound)"))
	}
	if reply == nil {
		return false // the caller gave up before it was answered
	}
	// Answer the resend the way it came (the first way may be gone: a
	// router proxy that died is why it was resent), with the resend's
	// reply_to: through another proxy, its own stamp.
	if in.Via != "" {
		if v, _, err := envelope.Next(reply); err == nil {
			reply = v.AppendWithReplyTo(nil, in.Rec.ReplyTo())
		}
	}
	if err := i.Answers.Send(in, reply); err != nil {
		i.Counters.DroppedReplies.Add(1)
	}
	return false
}

// Ack acknowledges in: a cast with acks whose handler has run (or ran
// before), or a resent call whose handler runs. AckFilter may hold it
// back.
func (i *Intake) Ack(in *Inbound) {
	id := in.Rec.ID()
	if len(in.Rec.ReplyTo()) == 0 || (i.AckFilter != nil && !i.AckFilter(id)) {
		return
	}
	h := i.Answers.Header(in, envelope.KindAck)
	if err := i.Answers.Send(in, h.AppendRecord(nil, nil)); err != nil {
		i.Counters.DroppedReplies.Add(1)
		return
	}
	i.Counters.AcksSent.Add(1)
}
