package relay

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relay-dev/relay/actors"
	"github.com/relay-dev/relay/envelope"
	"github.com/relay-dev/relay/matchmaker"
	"github.com/relay-dev/relay/sockets"
	"github.com/relay-dev/relay/store"
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
	if srv := n.local(r.addr); srv != nil && !n.opts.acks {
		h := n.header(envelope.KindCast, envelope.NewMsgID(), t, r, method, deadline)
		buf := getRecord()
		defer putRecord(buf)
		if *buf, err = n.record(*buf, &h, args); err == nil {
			err = n.handOver(srv, *buf)
		}
		if err != nil {
			return fmt.Errorf("%w: cast %s on %s", err, method, t)
		}
		return nil
	}
	if !n.opts.acks {
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
			return fmt.Errorf("%w: cast %s on %s", err, method, t)
		}
		return nil
	}
	// Resent by the resender until acknowledged; nobody waits.
	c := n.pending.Get(deadline)
	c.Addr = r.send()
	h := n.header(envelope.KindCast, c.ID, t, r, method, deadline)
	if err = setMeta(&h, out); err == nil {
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
// registered for t's topic (t.Server is ignored).
func (n *Node) fanout(ctx context.Context, t Target, method string, args any, deadline time.Time, out *outgoing) error {
	t.Server = ""
	if err := n.usable(t, method); err != nil {
		return err
	}
	if n.opts.routerProxy && !n.opts.pubsub {
		return fmt.Errorf("%w: fanout in router-proxy mode needs WithPubSub (publisher proxies): %s", ErrBadTarget, t)
	}
	h := n.header(envelope.KindFanout, envelope.NewMsgID(), t, route{}, method, deadline)
	if err := setMeta(&h, out); err != nil {
		return err
	}
	rec, err := n.record(nil, &h, args)
	if err != nil {
		return err
	}
	if n.opts.pubsub {
		if err := n.publish(ctx, &h, rec, deadline); err != nil {
			return fmt.Errorf("relay: fanout %s on %s: %w", method, t, err)
		}
		return nil
	}
	addrs, err := n.all(ctx, t, time.Now(), deadline)
	if err != nil {
		return err
	}
	for _, addr := range addrs { // one encoding for every copy
		if err := n.push(ctx, n.viaInproc(addr), rec, deadline); err != nil {
			return fmt.Errorf("%w: fanout %s on %s to %s", err, method, t, addr)
		}
	}
	return nil
}

// route is where one request goes.
type route struct {
	addr   string   // the peer: a server's registered endpoint, or a router proxy's front
	via    string   // where to send to reach addr, when not addr itself (inproc)
	server string   // router-proxy mode: the server the header names
	fronts []string // router-proxy mode: every proxy's front, for resends
	// servers: a bare call with acks, direct: where to send it (first)
	// and its topic's other servers, where it fails over (failovers).
	servers []string
}

// send is the endpoint to send the request to.
func (r route) send() string {
	if r.via != "" {
		return r.via
	}
	return r.addr
}

// resendAddrs is where resends of the request go in turn: the same server
// (which handles each msg_id once; another server of the topic would not
// know it ran already), through each router proxy in turn.
func (r route) resendAddrs() []string {
	if len(r.fronts) > 0 {
		return r.fronts
	}
	if len(r.servers) > 0 {
		return r.servers
	}
	return []string{r.send()}
}

// usable checks that the node is up and that t and method can be sent.
func (n *Node) usable(t Target, method string) error {
	select {
	case <-n.down:
		return n.downErr()
	default:
	}
	if err := t.check(); err != nil {
		return err
	}
	if method == "" {
		return fmt.Errorf("%w: empty method name for %s", ErrNoSuchMethod, t)
	}
	return nil
}

// route checks the node and the target and picks where a CALL or CAST
// goes.
func (n *Node) route(ctx context.Context, kind envelope.Kind, t Target, method string, now, deadline time.Time) (route, error) {
	if err := n.usable(t, method); err != nil {
		return route{}, err
	}
	if n.opts.routerProxy {
		name, fronts, err := n.pickRouted(ctx, t, now, deadline)
		if err != nil {
			return route{}, err
		}
		return route{addr: fronts[0], server: name, fronts: fronts}, nil
	}
	addr, addrs, err := n.pick(ctx, t, now, deadline)
	if err != nil {
		return route{}, err
	}
	r := route{addr: addr, via: n.viaInproc(addr)}
	if kind == envelope.KindCall && n.opts.acks && t.Server == "" {
		r.servers = n.failovers(r.send(), addrs)
	}
	return r, nil
}

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

// pick returns the address of the server to send to: the next one
// round-robin among those registered for t. When none is registered it waits
// for one up to the discovery wait (or the deadline, if sooner).
// It returns the addresses it picked from too.
func (n *Node) pick(ctx context.Context, t Target, now, deadline time.Time) (string, []string, error) {
	addrs, err := n.all(ctx, t, now, deadline)
	if err != nil {
		return "", nil, err
	}
	addrs = n.suspects.filter(addrs) // a server that failed lately goes last
	return addrs[n.nextIndex(t.key(), len(addrs))], addrs, nil
}

// all returns every address registered for t. When none is registered it
// waits for one up to the discovery wait (or the deadline, if sooner).
// now is the time of the caller's request (the cache's freshness is judged
// by it).
func (n *Node) all(ctx context.Context, t Target, now, deadline time.Time) ([]string, error) {
	key := t.key()
	var timer *time.Timer
	for {
		addrs, changed, err := n.routes.lookupAt(ctx, key, now)
		if err != nil {
			switch {
			case errors.Is(err, matchmaker.ErrClosed):
				return nil, n.downErr()
			case errors.Is(err, ErrUnauthorized):
				return nil, fmt.Errorf("%w: every server registered for %s is refused: %v", ErrUnauthorized, t, err)
			}
			return nil, fmt.Errorf("relay: look up %s: %w", t, err)
		}
		if len(addrs) > 0 {
			return n.inMode(t, addrs)
		}
		if timer == nil {
			wait := n.opts.discoveryWait
			if d := time.Until(deadline); d < wait {
				wait = d
			}
			if wait <= 0 {
				return nil, fmt.Errorf("%w: %s%s", ErrNoServers, t, n.fileHint(t))
			}
			timer = time.NewTimer(wait)
			defer timer.Stop()
		}
		select {
		case <-changed:
			now = time.Now()
		case <-timer.C:
			return nil, fmt.Errorf("%w: %s (waited %v for one to register%s)", ErrNoServers, t, n.opts.discoveryWait, n.fileHint(t))
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				// The deadline cut the discovery wait short: what the
				// caller needs to know is that nobody serves the target.
				return nil, &noServersError{target: t, ctx: ctx.Err(), hint: n.fileHint(t)}
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
	hint   string
}

func (e *noServersError) Error() string {
	return fmt.Sprintf("%v: %s (none registered before the deadline%s)", ErrNoServers, e.target, e.hint)
}

func (e *noServersError) Is(target error) bool { return target == ErrNoServers || target == e.ctx }
