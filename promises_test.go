package relay_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/relay-dev/relay"
	"github.com/relay-dev/relay/envelope"
	"github.com/relay-dev/relay/internal/demo"
	"github.com/relay-dev/relay/sockets"
)

// The promises of docs/PROTOCOL.md §7 and of the options, driven through
// the wire (raw frames a peer could send) or the public API.

// sendRaw sends one record, h and body, straight to a node's ROUTER.
func sendRaw(t testing.TB, n *relay.Node, h envelope.Header, body []byte) {
	t.Helper()
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := sockets.SendRaw(ctxTimeout(t, 5*time.Second), n.Endpoint(), h.AppendRecord(nil, body)); err != nil {
		t.Fatalf("send %s raw to %s: %v", h.Kind, n.Host(), err)
	}
}

// rawRequest is a request for the demo endpoint's method on compute, with
// arg as its body.
func rawRequest(t testing.TB, kind envelope.Kind, method string, arg any) (envelope.Header, []byte) {
	t.Helper()
	body, err := envelope.EncodeBody(arg)
	if err != nil {
		t.Fatal(err)
	}
	return envelope.Header{Kind: kind, ID: envelope.NewMsgID(), Target: envelope.Target{Topic: compute.Topic},
		Method: method, ReplyTo: bytes.Repeat([]byte{0xab}, 16), Deadline: time.Now().Add(time.Minute).UnixNano()}, body
}

// rawBarrier sends a raw cast of add 1 and waits until the server has
// applied it: handlers of what was sent before have most likely run too.
func rawBarrier(t testing.TB, n *relay.Node, ep *demo.Endpoint) {
	t.Helper()
	before := ep.Casts()
	h, body := rawRequest(t, envelope.KindCast, "add", 1)
	sendRaw(t, n, h, body)
	waitFor(t, 5*time.Second, func() error {
		if got := ep.Casts(); got <= before {
			return fmt.Errorf("barrier cast not applied (casts %d)", got)
		}
		return nil
	})
}

// A CALL or CAST already past its deadline on arrival runs no handler and
// gets no reply; it is counted (§4.2, §7).
func TestExpiredRequests(t *testing.T) {
	_, nodes, eps := newCluster(t, 1)
	server := nodes[0]
	for _, kind := range []envelope.Kind{envelope.KindCall, envelope.KindCast} {
		h, body := rawRequest(t, kind, "add", 100)
		h.Deadline = time.Now().Add(-time.Second).UnixNano()
		sendRaw(t, server, h, body)
	}
	waitStat(t, server, "ExpiredRequests", func(s relay.Stats) uint64 { return s.ExpiredRequests }, 2)
	rawBarrier(t, server, eps[0])
	st := server.Stats()
	if got := eps[0].State().Int; got != 1 {
		t.Errorf("counter %d: a request past its deadline ran (want only the barrier's 1)", got)
	}
	// No reply was even tried: one to the unconnected reply_to would be
	// dropped and counted.
	if st.DroppedReplies != 0 {
		t.Errorf("DroppedReplies = %d: a reply was sent for an expired call", st.DroppedReplies)
	}
}

// A reply whose caller is no longer connected is held until the request's
// deadline, then dropped and counted (§7).
func TestDroppedReply(t *testing.T) {
	_, nodes, _ := newCluster(t, 1)
	server := nodes[0]
	// The raw sender disconnects at once; the handler answers 300ms later.
	h, body := rawRequest(t, envelope.KindCall, "sleep", 300)
	h.Deadline = time.Now().Add(time.Second).UnixNano()
	sendRaw(t, server, h, body)
	waitStat(t, server, "DroppedReplies", func(s relay.Stats) uint64 { return s.DroppedReplies }, 1)
}

// A CALL with an empty reply_to or the fanout flag is dropped and counted
// (§3.1, §7); Call on a fanout target is ErrBadTarget.
func TestBadCalls(t *testing.T) {
	_, nodes, eps := newCluster(t, 1)
	server, client := nodes[0], nodes[1]
	noReply, body := rawRequest(t, envelope.KindCall, "add", 100)
	noReply.ReplyTo = nil
	sendRaw(t, server, noReply, body)
	fanout, body := rawRequest(t, envelope.KindCall, "add", 100)
	fanout.Target.Fanout = true
	sendRaw(t, server, fanout, body)
	waitStat(t, server, "Malformed", func(s relay.Stats) uint64 { return s.Malformed }, 2)
	rawBarrier(t, server, eps[0])
	if got := eps[0].State().Int; got != 1 {
		t.Errorf("counter %d: a bad call ran (want only the barrier's 1)", got)
	}

	start := time.Now()
	err := client.Call(ctxTimeout(t, 10*time.Second), relay.Target{Topic: compute.Topic, Fanout: true}, "add", 1, nil)
	if !errors.Is(err, relay.ErrBadTarget) {
		t.Errorf("Call on a fanout target = %v, want ErrBadTarget", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Call on a fanout target returned after %v: it was sent", d)
	}
}

// A call whose body does not decode gets ERROR BadRequest (§6.1); a cast's
// is counted as failed. A body that announces more than it holds is one.
func TestBadRequest(t *testing.T) {
	_, nodes, eps := newCluster(t, 1)
	server, client := nodes[0], nodes[1]
	ctx := ctxTimeout(t, 20*time.Second)
	for _, c := range []struct {
		name, method string
		arg          any
	}{
		{"a string for an int", "add", "five"},
		{"not msgpack", "echo", msgpack.RawMessage{0xc1}},
		{"two values", "echo", msgpack.RawMessage{0x01, 0x02}},
		{"a map of 2^32 entries in 5 bytes", "echo", msgpack.RawMessage{0xdf, 0xff, 0xff, 0xff, 0xff}},
		{"an array of 2^32 entries in 5 bytes", "echo", msgpack.RawMessage{0xdd, 0xff, 0xff, 0xff, 0xff}},
	} {
		var re *relay.RemoteError
		if err := client.Call(ctx, directed("s0"), c.method, c.arg, nil); !errors.As(err, &re) || re.Code != relay.CodeBadRequest {
			t.Errorf("%s: call = %v, want a RemoteError %s", c.name, err, relay.CodeBadRequest)
		}
	}
	if err := client.Cast(ctx, directed("s0"), "add", "five"); err != nil {
		t.Fatal(err)
	}
	waitStat(t, server, "FailedCasts", func(s relay.Stats) uint64 { return s.FailedCasts }, 1)
	if got := callInt(t, client, directed("s0"), "add", 2); got != 2 || eps[0].State().Int != 2 {
		t.Errorf("add 2 after the bad requests = %d, want 2", got)
	}
}

// The answer to a call that ended (cancelled by its caller) is accounted
// for: the server drops it when the CANCEL came before the handler
// returned (Cancelled), else the client counts it as late (LateReplies);
// which of the two depends on the race between CANCEL and the handler.
func TestLateReply(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	_, nodes, _ := newClusterWith(t, 1, func(_ int, srv *relay.Server) {
		srv.Handle("block", func(context.Context, *relay.Request) (any, error) {
			started <- struct{}{}
			<-release
			return "late", nil
		})
	})
	server, client := nodes[0], nodes[1]
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- client.Call(ctx, compute, "block", nil, nil) }()
	<-started
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled call = %v, want context.Canceled", err)
	}
	close(release)
	waitFor(t, 10*time.Second, func() error {
		late, dropped := client.Stats().LateReplies, server.Stats().Cancelled
		if late+dropped != 1 {
			return fmt.Errorf("client LateReplies %d + server Cancelled %d, want 1", late, dropped)
		}
		return nil
	})
}

// A call that arrives within half a second of Serve, for a method not
// handled yet, waits for Handle; later, a method nobody handles is
// ErrNoSuchMethod without waiting.
func TestHandleGrace(t *testing.T) {
	mm := newMatchmaker(t)
	server := newNode(t, mm, "s0")
	client := newNode(t, mm, "client")
	srv, err := server.Serve(compute)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- client.Call(ctxTimeout(t, 10*time.Second), compute, "late", nil, nil) }()
	// The scenario: Handle comes 200 ms after Serve, within the grace; the
	// call reaches the server before it (the delay is the point of the
	// test, not synchronisation).
	<-time.After(200 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("call for a method not handled yet returned (%v) before Handle, within the grace", err)
	default:
	}
	srv.Handle("late", func(context.Context, *relay.Request) (any, error) { return nil, nil })
	if err := <-done; err != nil {
		t.Fatalf("call that waited for Handle: %v", err)
	}

	// Past the grace: no wait.
	waitFor(t, 5*time.Second, func() error {
		start := time.Now()
		err := client.Call(ctxTimeout(t, 10*time.Second), compute, "never", nil, nil)
		if !errors.Is(err, relay.ErrNoSuchMethod) {
			t.Fatalf("unhandled method = %v, want ErrNoSuchMethod", err)
		}
		if d := time.Since(start); d > 400*time.Millisecond {
			return fmt.Errorf("ErrNoSuchMethod after %v: the server waited (still within the grace?)", d)
		}
		return nil
	})
}

// WithMaxMessageSize: a larger message never reaches a handler (libzmq
// drops the connection); the server keeps serving, the sender reconnects.
func TestMaxMessageSize(t *testing.T) {
	mm := newMatchmaker(t)
	server := newNode(t, mm, "s0", relay.WithMaxMessageSize(64<<10))
	var runs atomic.Int64
	srv, err := server.Serve(compute)
	if err != nil {
		t.Fatal(err)
	}
	srv.Handle("size", func(_ context.Context, r *relay.Request) (any, error) {
		runs.Add(1)
		var s string
		err := r.Decode(&s)
		return len(s), err
	})
	client := newNode(t, mm, "client")
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := client.Call(ctx, compute, "size", strings.Repeat("x", 100<<10), nil); !errors.Is(err, relay.ErrTimeout) {
		t.Errorf("call of 100 KiB to a server taking 64 KiB = %v, want ErrTimeout", err)
	}
	var n int
	waitFor(t, 10*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return client.Call(ctx, compute, "size", strings.Repeat("x", 60<<10), &n)
	})
	if n != 60<<10 || runs.Load() != 1 {
		t.Errorf("after the oversized call: size %d, handler runs %d; want %d, 1", n, runs.Load(), 60<<10)
	}
	if st := server.Stats(); st.LoopFailures != 0 || st.Restarts[relay.ActorRouter] != 0 {
		t.Errorf("an oversized message made the poller fail: %+v", st)
	}
}

// WithDrainTimeout: Close waits that long for handlers in flight, then
// cancels their contexts; a handler that ends within it still answers.
func TestDrainTimeout(t *testing.T) {
	for _, c := range []struct {
		name    string
		drain   time.Duration
		handler time.Duration // 0: until ctx ends
	}{
		{"handler outlives the drain", 300 * time.Millisecond, 0},
		{"handler ends within the drain", 5 * time.Second, 300 * time.Millisecond},
	} {
		t.Run(c.name, func(t *testing.T) {
			mm := newMatchmaker(t)
			server := newNode(t, mm, "s0", relay.WithDrainTimeout(c.drain))
			srv, err := server.Serve(compute)
			if err != nil {
				t.Fatal(err)
			}
			started := make(chan struct{}, 1)
			handlerErr := make(chan error, 1)
			srv.Handle("work", func(ctx context.Context, _ *relay.Request) (any, error) {
				started <- struct{}{}
				var wait <-chan time.Time
				if c.handler > 0 {
					wait = time.After(c.handler) // the handler's own work
				}
				select {
				case <-wait:
					handlerErr <- nil
					return "done", nil
				case <-ctx.Done():
					handlerErr <- ctx.Err()
					return nil, ctx.Err()
				}
			})
			client := newNode(t, mm, "client")
			reply := make(chan error, 1)
			go func() {
				var s string
				err := client.Call(ctxTimeout(t, 20*time.Second), compute, "work", nil, &s)
				if err == nil && s != "done" {
					err = fmt.Errorf("reply %q", s)
				}
				reply <- err
			}()
			<-started
			start := time.Now()
			if err := server.Close(); err != nil {
				t.Fatal(err)
			}
			took := time.Since(start)
			herr := <-handlerErr
			if c.handler == 0 {
				if !errors.Is(herr, context.Canceled) {
					t.Errorf("handler still running at the drain timeout ended with %v, want its ctx cancelled", herr)
				}
				if took < c.drain || took > c.drain+3*time.Second {
					t.Errorf("Close took %v with a drain timeout of %v and a handler that never ends", took, c.drain)
				}
				return
			}
			if herr != nil {
				t.Errorf("handler that ends within the drain: ctx ended first (%v)", herr)
			}
			if err := <-reply; err != nil {
				t.Errorf("call whose handler ended within the drain: %v", err)
			}
		})
	}
}

// WithDedupTTL: a server remembers an acknowledged msg_id that long. A
// resend within it is not applied again; past it, it is.
func TestDedupTTL(t *testing.T) {
	for _, c := range []struct {
		name string
		ttl  time.Duration
		runs int
	}{
		{"resend within the TTL", time.Minute, 1},
		{"resend past the TTL", 50 * time.Millisecond, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			mm := newMatchmaker(t)
			var mu sync.Mutex
			acked := map[string]bool{}
			server := newNode(t, mm, "s0", relay.WithDedupTTL(c.ttl), relay.WithAckFilter(func(id string) bool {
				mu.Lock()
				defer mu.Unlock()
				first := !acked[id]
				acked[id] = true
				return !first // lose the first ACK: the client resends
			}))
			var runs []string
			srv, err := server.Serve(compute)
			if err != nil {
				t.Fatal(err)
			}
			srv.Handle("apply", func(_ context.Context, r *relay.Request) (any, error) {
				mu.Lock()
				runs = append(runs, r.ID)
				mu.Unlock()
				return nil, nil
			})
			// One resend, 300 ms after the first send.
			client := newNode(t, mm, "client", relay.WithAcks(true), relay.WithRetry(300*time.Millisecond, 1, 1))
			if err := client.Cast(ctxTimeout(t, 10*time.Second), compute, "apply", nil); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 5*time.Second, func() error {
				mu.Lock()
				n := len(runs)
				mu.Unlock()
				if client.Stats().Resends != 1 || server.Stats().Duplicates+uint64(n) < 2 {
					return fmt.Errorf("client resends %d, server duplicates %d, runs %d: the resend has not arrived",
						client.Stats().Resends, server.Stats().Duplicates, n)
				}
				return nil
			})
			mu.Lock()
			defer mu.Unlock()
			if len(runs) != c.runs || runs[0] != runs[len(runs)-1] {
				t.Errorf("handler runs %v with a dedup TTL of %v and a resend 300ms later; want %d of one msg_id", runs, c.ttl, c.runs)
			}
			if dup := server.Stats().Duplicates; int(dup) != 2-c.runs {
				t.Errorf("Duplicates = %d, want %d", dup, 2-c.runs)
			}
		})
	}
}

// An acknowledged cast that is never acknowledged is resent until its
// deadline, handled once, and then counted as dropped.
func TestAckedCastNeverAcknowledged(t *testing.T) {
	mm := newMatchmaker(t)
	server := newNode(t, mm, "s0", relay.WithAckFilter(func(string) bool { return false }))
	var runs atomic.Int64
	srv, err := server.Serve(compute)
	if err != nil {
		t.Fatal(err)
	}
	srv.Handle("apply", func(context.Context, *relay.Request) (any, error) { runs.Add(1); return nil, nil })
	client := newNode(t, mm, "client", relay.WithAcks(true), relay.WithRetry(50*time.Millisecond, 1, 4))
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := client.Cast(ctx, compute, "apply", nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() error {
		if st := client.Stats(); st.DroppedCasts != 1 || st.Resends < 1 {
			return fmt.Errorf("client DroppedCasts = %d, Resends = %d; want 1, >= 1", st.DroppedCasts, st.Resends)
		}
		return nil
	})
	if n, dup := runs.Load(), server.Stats().Duplicates; n != 1 || dup < 1 {
		t.Errorf("handler ran %d times, server Duplicates %d; want 1, >= 1", n, dup)
	}
}

// Listener failures and notifications a node cannot deliver are counted:
// a listener's error (FailedCasts) or panic (HandlerPanics), a body that
// does not decode (Malformed), a pool with no listener here (FailedCasts).
func TestNotifyFailuresCounted(t *testing.T) {
	mm := newMatchmaker(t)
	pub := newNode(t, mm, "pub")
	sub := newNode(t, mm, "sub")
	got := make(chan string, 16)
	l, err := sub.Listen([]string{"audit"}, "pool", func(_ context.Context, d *relay.Delivery) error {
		got <- d.EventType
		switch d.EventType {
		case "fail":
			return errors.New("listener failed")
		case "panic":
			panic("listener panicked")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Stop()
	ctx := ctxTimeout(t, 10*time.Second)
	for _, e := range []string{"fail", "panic", "ok"} {
		if err := pub.Notify(ctx, relay.Notification{Topic: "audit", EventType: e}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-got:
		case <-time.After(5 * time.Second):
			t.Fatalf("notification %s not delivered", e)
		}
	}
	notify := func(pool string, body []byte) {
		sendRaw(t, sub, envelope.Header{Kind: envelope.KindNotify, ID: envelope.NewMsgID(),
			Target: envelope.Target{Exchange: "$notify", Topic: "audit.info", Server: pool}, Method: "raw"}, body)
	}
	good, err := envelope.EncodeBody(map[string]any{"publisher_id": "p", "priority": "info", "timestamp": 1, "payload": nil})
	if err != nil {
		t.Fatal(err)
	}
	notify("pool", []byte{0xc1})
	notify("pool", []byte{0x05})
	notify("nobody", good)
	notify("pool", good) // the barrier: delivered after the others were handled
	select {
	case e := <-got:
		if e != "raw" {
			t.Fatalf("delivered %q", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a raw NOTIFY with a valid body was not delivered")
	}
	waitFor(t, 5*time.Second, func() error {
		st := sub.Stats()
		if st.FailedCasts != 2 || st.HandlerPanics != 1 || st.Malformed != 2 {
			return fmt.Errorf("FailedCasts = %d, HandlerPanics = %d, Malformed = %d; want 2, 1, 2", st.FailedCasts, st.HandlerPanics, st.Malformed)
		}
		return nil
	})
	select {
	case e := <-got:
		t.Errorf("undeliverable notification reached the listener: %q", e)
	default:
	}
}
