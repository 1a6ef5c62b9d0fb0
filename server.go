package relay

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/relay-dev/relay/actors"
	"github.com/relay-dev/relay/envelope"
	"github.com/relay-dev/relay/matchmaker"
	"github.com/relay-dev/relay/proxy"
)

// Handler serves one method. Its result is encoded with msgpack and sent
// back to the caller; its error reaches the caller as a *RemoteError (see
// errorCode for its Code). A panic becomes a RemoteError with Code
// "panic"; the server keeps running. ctx carries the caller's deadline,
// and ends when the node closes or the caller cancels the call.
type Handler func(ctx context.Context, req *Request) (any, error)

// Server serves one target of a node. Make one with Node.Serve; add methods
// with Handle. Safe for concurrent use.
type Server struct {
	node    *Node
	target  Target
	started time.Time

	// mu guards the fields below.
	mu       sync.RWMutex
	handlers map[string]method
	stopped  bool
}

// method is a handler with its method name (so that a request can name it
// without a string of its own).
type method struct {
	name string
	h    Handler
}

// Serve registers t with the matchmaker, under its bare topic and directed
// at this node, and starts receiving calls and casts for it. t.Server
// defaults to the node's host; a different name makes this node answer
// directed calls for that name. Add methods with Handle before callers use
// them: a call that arrives within half a second of Serve for a method
// not handled yet waits for Handle; later, it gets ErrNoSuchMethod.
func (n *Node) Serve(t Target) (*Server, error) {
	select {
	case <-n.down:
		return nil, n.downErr()
	default:
	}
	if err := t.check(); err != nil {
		return nil, err
	}
	if t.Fanout {
		return nil, fmt.Errorf("%w: Serve takes a topic, not a fanout target: %s", ErrBadTarget, t)
	}
	if t.Server == "" {
		t.Server = n.opts.host
	}
	s := &Server{node: n, target: t, handlers: make(map[string]method), started: time.Now()}
	tk := topicKey(t.Exchange, t.Topic)
	n.mu.Lock()
	n.servers[tk] = append(n.servers[tk], s)
	n.mu.Unlock()
	n.subscribe(proxy.FanoutPrefix(t.Exchange, t.Topic))
	if n.opts.routerProxy {
		n.helloFirst()
	}
	if err := n.deferRegistration(s.register(n.base)); err != nil {
		s.Stop()
		return nil, fmt.Errorf("relay: serve %s: %w", t, err)
	}
	n.log.Info("serving", "target", t.String(), "endpoint", n.endpoint)
	n.checkListed(s)
	return s, nil
}

// Target returns the target the server serves (with Server filled in).
func (s *Server) Target() Target { return s.target }

// Handle sets the handler of method, replacing any earlier one. The
// node's server interceptors (WithServerInterceptor) run around it.
func (s *Server) Handle(name string, h Handler) {
	h = chainServer(s.node.opts.serverInterceptors, s.node.safe(h))
	s.mu.Lock()
	s.handlers[name] = method{name: name, h: h}
	s.mu.Unlock()
	n := s.node
	n.mu.Lock()
	close(n.handled)
	n.handled = make(chan struct{})
	n.mu.Unlock()
}

// keys are the matchmaker entries of the server: the bare topic and the
// directed target.
func (s *Server) keys() [2]matchmaker.Key {
	t := s.target
	return [2]matchmaker.Key{
		{Exchange: t.Exchange, Topic: t.Topic},
		{Exchange: t.Exchange, Topic: t.Topic, Server: t.Server},
	}
}

// isStopped reports whether Stop was called.
func (s *Server) isStopped() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.stopped
}

func (s *Server) register(ctx context.Context) error {
	if s.isStopped() {
		return nil
	}
	ks := s.keys()
	es := []matchmaker.Entry{{Key: ks[0], Addr: s.member()}, {Key: ks[1], Addr: s.member()}}
	if err := s.node.mm.RegisterMany(ctx, es, s.node.opts.registrationTTL); err != nil {
		return fmt.Errorf("register %s and %s: %w", ks[0], ks[1], err)
	}
	return nil
}

// member is what the server registers: its node's address (with CURVE,
// carrying its public key: curve.WithKey), or in router-proxy mode "@" and
// its name (clients reach it through proxies, whose keys they check).
func (s *Server) member() string {
	if s.node.opts.routerProxy {
		return "@" + s.target.Server
	}
	return s.node.sec.Member(s.node.endpoint)
}

// Stop unregisters the server first, so that callers move to other servers,
// then stops dispatching to it. Handlers already running finish. Idempotent.
func (s *Server) Stop() error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return nil
	}
	s.stopped = true
	s.mu.Unlock()
	n := s.node
	n.unsubscribe(proxy.FanoutPrefix(s.target.Exchange, s.target.Topic))
	var errs []error
	for _, k := range s.keys() {
		if err := n.mm.Unregister(context.Background(), k, s.member()); err != nil {
			errs = append(errs, fmt.Errorf("relay: unregister %s: %w", k, err))
		}
	}
	tk := topicKey(s.target.Exchange, s.target.Topic)
	n.mu.Lock()
	ss := n.servers[tk]
	for i, x := range ss {
		if x == s {
			ss = append(ss[:i:i], ss[i+1:]...)
			break
		}
	}
	if len(ss) == 0 {
		delete(n.servers, tk)
	} else {
		n.servers[tk] = ss
	}
	n.mu.Unlock()
	return errors.Join(errs...)
}

// Request is one call or cast received by a server.
type Request struct {
	// Method is the method called.
	Method string
	// Target is the target the caller addressed.
	Target Target
	// ID is the message id (32 hex digits), the same on a resent message.
	ID string
	// Deadline is the caller's deadline (zero if none).
	Deadline time.Time
	// Cast is true for a cast or a fanout: no reply is sent.
	Cast bool
	// Kind is KindCall, KindCast, KindFanout, or (for server interceptors
	// around a listener) KindNotify.
	Kind Kind
	// Header holds the headers the caller sent (nil when none).
	Header Header
	// Attempt counts the resends of the request (WithAcks): 0 when first
	// sent, n for the n-th resend. Redelivered is Attempt > 0: with acks a
	// request is handled at least once, and twice only when its server
	// stopped (a crash, a kill) after its handler began and before it was
	// recorded as handled (with WithDataDir; without, a server that
	// restarts forgets what it handled). A handler that must not run twice
	// for one ID checks it.
	Attempt     int
	Redelivered bool
	// Caller is who sent the request, as CURVE authenticated it: its
	// public key and its name on this node's allow-list (zero without
	// CURVE; through a router proxy, the client the proxy admitted). A
	// handler authorizes per method with it, e.g. returning an error with
	// code CodeUnauthorized (ErrorCode) to callers it refuses.
	Caller Peer

	body  []byte
	reply Header // headers for the answer
}

// SetReplyHeader sets a header of the call's answer (REPLY or ERROR); the
// caller reads it with WithReplyHeader. Not safe for concurrent use: set
// reply headers from the handler's goroutine.
func (r *Request) SetReplyHeader(key, value string) {
	if r.reply == nil {
		r.reply = Header{}
	}
	r.reply[key] = value
}

// Decode decodes the call's arguments into v, a pointer. Its error, when a
// handler returns it, reaches the caller as a RemoteError with Code
// "BadRequest".
func (r *Request) Decode(v any) error {
	if err := envelope.DecodeBody(r.body, v); err != nil {
		return &badRequestError{fmt.Errorf("relay: decode arguments of %s into %T: %w", r.Method, v, err)}
	}
	return nil
}

// badRequestError marks arguments that do not decode.
type badRequestError struct{ err error }

func (e *badRequestError) Error() string     { return e.err.Error() }
func (e *badRequestError) Unwrap() error     { return e.err }
func (e *badRequestError) ErrorCode() string { return CodeBadRequest }

// topicKey is the key of a node's servers of exchange and topic.
func topicKey(exchange, topic string) string { return exchange + "\x00" + topic }

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

// requestKind is the Kind of a request record.
func requestKind(k envelope.Kind, v *envelope.View) Kind {
	switch {
	case k == envelope.KindCall:
		return KindCall
	case k == envelope.KindFanout || v.Fanout():
		return KindFanout
	case k == envelope.KindNotify:
		return KindNotify
	}
	return KindCast
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

// requestTarget is the target a request addressed, built from the server's
// own strings where they are equal (they are, for all but the version), so
// that a request costs no string of its own.
func (s *Server) requestTarget(v *envelope.View) Target {
	t := Target{Exchange: s.target.Exchange, Topic: s.target.Topic, Namespace: s.target.Namespace, Fanout: v.Fanout()}
	if len(v.Server()) > 0 {
		t.Server = s.target.Server
	}
	switch ver := v.Version(); {
	case len(ver) == 0:
	case string(ver) == s.target.Version:
		t.Version = s.target.Version
	default:
		t.Version = string(ver)
	}
	return t
}

func deadlineTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// handleGrace is how long after Serve a request for a method not handled
// yet waits for Handle: Serve registers the target before the caller of
// Serve can add its methods, and a client already waiting for the target
// may call in between.
const handleGrace = 500 * time.Millisecond

// startGrace is how long after its Start a node's requests for targets or
// methods it does not serve yet wait for Serve and Handle: a server that
// restarts on its old port is reached by its clients (their resends, their
// cached routes) as soon as it binds, before it has served its targets.
const startGrace = 2 * time.Second

// resolveLate waits, within handleGrace of the newest matching Serve or
// startGrace of the node's start, for the method to be handled; it returns
// err when it is not.
func (n *Node) resolveLate(ctx context.Context, v *envelope.View, err error) (method, *Server, error) {
	key := topicKey(string(v.Exchange()), string(v.Topic()))
	for {
		n.mu.RLock()
		until := n.started.Add(startGrace)
		for _, s := range n.servers[key] {
			until = later(until, s.started.Add(handleGrace))
		}
		handled := n.handled
		n.mu.RUnlock()
		wait := time.Until(until)
		if wait <= 0 {
			return method{}, nil, err
		}
		t := time.NewTimer(wait)
		select {
		case <-handled:
			t.Stop()
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return method{}, nil, err
		}
		m, s, rerr := n.resolve(v)
		if rerr == nil {
			return m, s, nil
		}
		err = rerr
	}
}

// awaitHandlers waits until a handler or listener is added (Handle,
// Listen) or until passes; it reports false, at once, when until has
// passed.
func (n *Node) awaitHandlers(until time.Time) bool {
	wait := time.Until(until)
	if wait <= 0 {
		return false
	}
	n.mu.RLock()
	handled := n.handled
	n.mu.RUnlock()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-handled:
	case <-t.C:
	case <-n.down:
		return false
	}
	return true
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// errorMessage is the Message a handler error travels with: a
// *RemoteError's own Message (not wrapped again), else err.Error().
func errorMessage(err error) string {
	if re, ok := err.(*RemoteError); ok {
		return re.Message
	}
	return err.Error()
}

// resolve finds the handler for a request: a server of its exchange and
// topic (and server name, when directed) whose namespace equals and whose
// version is compatible, that handles the method. It allocates nothing
// when it finds one.
func (n *Node) resolve(v *envelope.View) (method, *Server, error) {
	var buf [256]byte
	key := append(append(append(buf[:0], v.Exchange()...), 0), v.Topic()...)
	server, ns, ver, name := v.Server(), v.Namespace(), v.Version(), v.Method()
	n.mu.RLock()
	servers := n.servers[string(key)]
	n.mu.RUnlock()
	for _, s := range servers {
		st := &s.target
		if len(server) > 0 && string(server) != st.Server {
			continue
		}
		s.mu.RLock()
		m, ok := s.handlers[string(name)]
		stopped := s.stopped
		s.mu.RUnlock()
		if ok && !stopped && string(ns) == st.Namespace && (len(ver) == 0 || compatible(st.Version, string(ver))) {
			return m, s, nil
		}
	}
	return method{}, nil, n.unresolved(v, servers)
}

// unresolved explains why no handler matches a request.
func (n *Node) unresolved(v *envelope.View, servers []*Server) error {
	h := v.Header()
	t := h.Target
	var serving []string
	for _, s := range servers {
		st := s.target
		if t.Server != "" && t.Server != st.Server {
			continue
		}
		s.mu.RLock()
		stopped := s.stopped
		s.mu.RUnlock()
		if !stopped {
			serving = append(serving, fmt.Sprintf("ns=%q v=%q", st.Namespace, versionOr(st.Version)))
		}
	}
	if len(serving) == 0 {
		return fmt.Errorf("method %q: host %s serves no topic %s for server %q", h.Method, n.opts.host, t.Topic, t.Server)
	}
	return fmt.Errorf("method %q (ns=%q v=%q) not served on topic %s by host %s (serving %s)",
		h.Method, t.Namespace, t.Version, t.Topic, n.opts.host, strings.Join(serving, ", "))
}

func versionOr(v string) string {
	if v == "" {
		return "1.0"
	}
	return v
}
