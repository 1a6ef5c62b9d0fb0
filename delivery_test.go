package relay_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relay-dev/relay"
	"github.com/relay-dev/relay/envelope"
	"github.com/relay-dev/relay/matchmaker"
	"github.com/relay-dev/relay/sockets"
)

// gatedServer serves compute on n with a method "gated" that reports each
// run's Request on runs and returns only once release is closed.
func gatedServer(t *testing.T, n *relay.Node) (runs chan *relay.Request, release chan struct{}) {
	t.Helper()
	srv, err := n.Serve(compute)
	if err != nil {
		t.Fatal(err)
	}
	runs, release = make(chan *relay.Request, 16), make(chan struct{})
	srv.Handle("gated", func(ctx context.Context, req *relay.Request) (any, error) {
		runs <- req
		<-release
		return "done", nil
	})
	return runs, release
}

// ackedRecord is a request record with acks of method, with msg_id id,
// sent for the attempt-th time, as a client would send it.
func ackedRecord(t testing.TB, kind envelope.Kind, id envelope.MsgID, method string, attempt uint8) []byte {
	h, body := rawRequest(t, kind, method, nil)
	h.ID, h.AckWanted, h.Attempt = id, true, attempt
	return h.AppendRecord(nil, body)
}

// A cast with acks is acknowledged when its handler has returned, not
// when it arrives: a server that dies while the handler runs sends no
// ACK, so its sender resends. A resend that comes while the handler runs
// gets nothing; one that comes after gets the ACK again, and the handler
// does not run again.
func TestCastAckedAfterItsHandler(t *testing.T) {
	mm := newMatchmaker(t)
	server := newNode(t, mm, "s0")
	runs, release := gatedServer(t, server)
	d, err := sockets.DialRaw(server.Endpoint(), sockets.RawDealerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	id := envelope.NewMsgID()
	if err := d.Send(ackedRecord(t, envelope.KindCast, id, "gated", 0)); err != nil {
		t.Fatal(err)
	}
	select {
	case req := <-runs:
		if req.Attempt != 0 || req.Redelivered {
			t.Errorf("first delivery: Attempt %d, Redelivered %v; want 0, false", req.Attempt, req.Redelivered)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the handler did not run")
	}
	if m, err := d.Recv(300 * time.Millisecond); err == nil {
		h, _ := rawReply(t, m)
		t.Fatalf("got %v for the cast while its handler runs; want nothing before it returns", h.Kind)
	}
	// A resend while the handler runs: no second run, no ACK yet.
	if err := d.Send(ackedRecord(t, envelope.KindCast, id, "gated", 1)); err != nil {
		t.Fatal(err)
	}
	if m, err := d.Recv(300 * time.Millisecond); err == nil {
		h, _ := rawReply(t, m)
		t.Fatalf("got %v for a resend while the handler runs; want nothing", h.Kind)
	}
	close(release)
	m, err := d.Recv(5 * time.Second)
	if err != nil {
		t.Fatalf("no ACK once the handler returned: %v", err)
	}
	if h, _ := rawReply(t, m); h.Kind != envelope.KindAck || h.ID != id {
		t.Fatalf("got %v %s, want the ACK of %s", h.Kind, h.ID, id)
	}
	// A resend after: the ACK again, and no run.
	if err := d.Send(ackedRecord(t, envelope.KindCast, id, "gated", 2)); err != nil {
		t.Fatal(err)
	}
	if m, err = d.Recv(5 * time.Second); err != nil {
		t.Fatalf("no ACK for a resend of a handled cast: %v", err)
	}
	if h, _ := rawReply(t, m); h.Kind != envelope.KindAck || h.ID != id {
		t.Fatalf("got %v %s, want the ACK of %s again", h.Kind, h.ID, id)
	}
	select {
	case <-runs:
		t.Fatal("the handler ran again for a resend")
	default:
	}
	if got := server.Stats().Duplicates; got != 2 {
		t.Errorf("Duplicates = %d, want 2", got)
	}
}

// A resent request carries its attempt: the handler of a message seen for
// the first time with attempt 3 (its server restarted, and forgot) is told
// it may be a redelivery.
func TestRequestRedelivered(t *testing.T) {
	mm := newMatchmaker(t)
	server := newNode(t, mm, "s0")
	runs, release := gatedServer(t, server)
	close(release)
	d, err := sockets.DialRaw(server.Endpoint(), sockets.RawDealerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Send(ackedRecord(t, envelope.KindCall, envelope.NewMsgID(), "gated", 3)); err != nil {
		t.Fatal(err)
	}
	select {
	case req := <-runs:
		if req.Attempt != 3 || !req.Redelivered {
			t.Errorf("Attempt %d, Redelivered %v; want 3, true", req.Attempt, req.Redelivered)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the handler did not run")
	}
}

// A resent call whose handler ran is answered again with the same reply
// while the server keeps it; once the answer is evicted (WithDedupBytes),
// with ERROR ReplyUnavailable: never a second run.
func TestResentCallAfterItsAnswerWasEvicted(t *testing.T) {
	for _, tc := range []struct {
		name  string
		bytes int
		want  envelope.Kind
	}{{"kept", 1 << 20, envelope.KindReply}, {"evicted", 1, envelope.KindError}} {
		t.Run(tc.name, func(t *testing.T) {
			mm := newMatchmaker(t)
			server := newNode(t, mm, "s0", relay.WithDedupBytes(tc.bytes))
			runs, release := gatedServer(t, server)
			close(release)
			d, err := sockets.DialRaw(server.Endpoint(), sockets.RawDealerConfig{})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			id := envelope.NewMsgID()
			for attempt := range uint8(2) {
				if err := d.Send(ackedRecord(t, envelope.KindCall, id, "gated", attempt)); err != nil {
					t.Fatal(err)
				}
				m, err := d.Recv(5 * time.Second)
				if err != nil {
					t.Fatalf("attempt %d: no answer: %v", attempt, err)
				}
				h, body := rawReply(t, m)
				want := envelope.KindReply
				if attempt == 1 {
					want = tc.want
				}
				if h.Kind != want || h.ID != id {
					t.Fatalf("attempt %d: got %v for %s, want %v", attempt, h.Kind, h.ID, want)
				}
				if h.Kind == envelope.KindError {
					code, _, err := envelope.DecodeError(body)
					if err != nil || code != "ReplyUnavailable" {
						t.Fatalf("attempt %d: error code %q (%v), want ReplyUnavailable", attempt, code, err)
					}
				}
			}
			if n := len(runs); n != 1 {
				t.Fatalf("the handler ran %d times, want once", n)
			}
		})
	}
}

// undeliveredLog collects what a WithUndelivered hook reports.
type undeliveredLog struct {
	mu  sync.Mutex
	got []relay.Undelivered
}

func (l *undeliveredLog) add(u relay.Undelivered) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, u)
}

func (l *undeliveredLog) wait(t *testing.T, n int) []relay.Undelivered {
	t.Helper()
	var got []relay.Undelivered
	waitFor(t, 10*time.Second, func() error {
		l.mu.Lock()
		defer l.mu.Unlock()
		got = append(got[:0], l.got...)
		if len(got) < n {
			return errors.New("not reported yet")
		}
		return nil
	})
	return got
}

// A cast that Cast accepted and that was then not delivered reaches the
// sender's WithUndelivered hook, message by message, with what was sent:
// with acks, when no ACK came by its deadline; without, when its server
// could not be reached by then.
func TestUndeliveredCastsAreReported(t *testing.T) {
	t.Run("acks", func(t *testing.T) {
		mm := newMatchmaker(t)
		server := newNode(t, mm, "s0", relay.WithAckFilter(func(string) bool { return false }))
		runs, release := gatedServer(t, server)
		close(release)
		var log undeliveredLog
		client := newNode(t, mm, "client", relay.WithAcks(true), relay.WithRetry(20*time.Millisecond, 2, 0), relay.WithUndelivered(log.add))
		ctx, cancel := context.WithTimeout(relay.WithHeader(context.Background(), "order", "o-17"), 500*time.Millisecond)
		defer cancel()
		if err := client.Cast(ctx, compute, "gated", "payload"); err != nil {
			t.Fatal(err)
		}
		u := log.wait(t, 1)[0]
		if u.Kind != relay.KindCast || u.Method != "gated" || u.Target.Topic != "compute" || u.Header.Get("order") != "o-17" {
			t.Errorf("reported %+v; want the cast gated on compute with header order=o-17", u)
		}
		var body string
		if err := envelope.DecodeBody(u.Body, &body); err != nil || body != "payload" {
			t.Errorf("reported body %q (%v), want the cast's arguments", body, err)
		}
		if !errors.Is(u.Err, relay.ErrUndelivered) || u.Attempts < 3 || u.ID == "" || u.Peer != server.Endpoint() {
			t.Errorf("reported Err %v, Attempts %d, ID %q, Peer %q; want ErrUndelivered after several resends to %s", u.Err, u.Attempts, u.ID, u.Peer, server.Endpoint())
		}
		if n := len(runs); n != 1 {
			t.Errorf("the handler ran %d times, want once (the resends are duplicates)", n)
		}
		if got := client.Stats().DroppedCasts; got != 1 {
			t.Errorf("DroppedCasts = %d, want 1", got)
		}
	})
	t.Run("no acks", func(t *testing.T) {
		mm := newMatchmaker(t)
		// A registration with nothing behind it: the port is closed.
		m, err := matchmaker.Open(mm)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		dead := "tcp://127.0.0.1:9"
		if err := m.Register(context.Background(), matchmaker.Key{Topic: "compute"}, dead, time.Minute); err != nil {
			t.Fatal(err)
		}
		var log undeliveredLog
		client := newNode(t, mm, "client", relay.WithUndelivered(log.add))
		if err := client.Cast(ctxTimeout(t, 300*time.Millisecond), compute, "add", 1); err != nil {
			t.Fatal(err)
		}
		u := log.wait(t, 1)[0]
		if u.Kind != relay.KindCast || u.Method != "add" || u.Peer != dead || !errors.Is(u.Err, relay.ErrUndelivered) {
			t.Errorf("reported %+v (err %v); want the cast add to %s, ErrUndelivered", u, u.Err, dead)
		}
	})
}

// startWith starts a node on mm advertising host, for a test that closes
// it itself (and at its end, in case it fails first).
func startWith(t *testing.T, mm, host string, opts ...relay.Option) *relay.Node {
	t.Helper()
	n, err := relay.Start(ctxTimeout(t, 15*time.Second), append([]relay.Option{relay.WithMatchmaker(mm), relay.WithHost(host)}, opts...)...)
	if err != nil {
		t.Fatalf("start %s: %v", host, err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// A cast with acks sent by a node with a data directory is on disk when
// Cast returns: when the sender's process ends before the ACK, the next
// process of that directory sends it again, and the server, which ran it
// already, acknowledges it without running it again. Nothing is reported
// undelivered: the cast was kept, not lost.
func TestDurableCastSurvivesSenderRestart(t *testing.T) {
	mm := newMatchmaker(t)
	var acking atomic.Bool
	server := newNode(t, mm, "s0", relay.WithAckFilter(func(string) bool { return acking.Load() }))
	runs, release := gatedServer(t, server)
	close(release)
	dir := t.TempDir()
	var log undeliveredLog
	opts := []relay.Option{relay.WithDataDir(dir), relay.WithAcks(true), relay.WithRetry(20*time.Millisecond, 2, 0), relay.WithUndelivered(log.add)}
	first := startWith(t, mm, "sender", opts...)
	if err := first.Cast(ctxTimeout(t, time.Minute), compute, "gated", "durable"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-runs:
	case <-time.After(10 * time.Second):
		t.Fatal("the cast's handler did not run")
	}
	waitAtLeast(t, server, "Duplicates", func(s relay.Stats) uint64 { return s.Duplicates }, 1) // resent: no ACK came
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	acking.Store(true)
	second := startWith(t, mm, "sender", opts...)
	waitAtLeast(t, second, "AcksReceived", func(s relay.Stats) uint64 { return s.AcksReceived }, 1)
	// The ACK is counted as it arrives; the cast is settled (and its
	// deletion queued) just after.
	waitFor(t, 10*time.Second, func() error {
		if n := second.Stats().Pending; n != 0 {
			return fmt.Errorf("%d messages still pending after the ACK", n)
		}
		return nil
	})
	if err := second.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(runs); n != 0 {
		t.Errorf("the cast's handler ran %d more times after the restart, want none", n)
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	if len(log.got) != 0 {
		t.Errorf("reported undelivered: %+v; a durable cast is kept, not lost", log.got)
	}
	// The outbox is empty: a third process sends nothing.
	third := startWith(t, mm, "sender", opts...)
	defer third.Close()
	before := server.Stats().Duplicates
	// A call on the same connection: what the third process sent again
	// at its start arrived before it.
	if err := third.Call(ctxTimeout(t, 10*time.Second), compute, "gated", nil, nil); err != nil {
		t.Fatal(err)
	}
	if after := server.Stats().Duplicates; after != before {
		t.Errorf("a third process sent %d casts again; the acknowledged cast was not deleted", after-before)
	}
}

// A cast with acks pending when its node closes, without a data
// directory, is reported undelivered (the node is closed) — not dropped
// with a counter only.
func TestCastPendingAtCloseIsReported(t *testing.T) {
	mm := newMatchmaker(t)
	server := newNode(t, mm, "s0", relay.WithAckFilter(func(string) bool { return false }))
	_, release := gatedServer(t, server)
	close(release)
	var log undeliveredLog
	client := startWith(t, mm, "client", relay.WithAcks(true), relay.WithUndelivered(log.add))
	if err := client.Cast(ctxTimeout(t, time.Minute), compute, "gated", nil); err != nil {
		t.Fatal(err)
	}
	waitAtLeast(t, server, "Duplicates", func(s relay.Stats) uint64 { return s.Duplicates }, 1)
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}
	u := log.wait(t, 1)[0]
	if !errors.Is(u.Err, relay.ErrUndelivered) || !errors.Is(u.Err, relay.ErrClosed) || u.Method != "gated" {
		t.Errorf("reported %+v (err %v); want the cast gated, ErrUndelivered and ErrClosed", u, u.Err)
	}
}

// A cast with acks for a method its server does not handle is not
// acknowledged: its sender resends it until its deadline and then reports
// it undelivered, instead of taking the server's drop for a delivery.
func TestCastWithAcksToUnknownMethodIsReported(t *testing.T) {
	mm := newMatchmaker(t)
	server := newNode(t, mm, "s0")
	serveDemo(t, server, "s0")
	var log undeliveredLog
	client := startWith(t, mm, "client", relay.WithAcks(true), relay.WithRetry(20*time.Millisecond, 2, 0), relay.WithUndelivered(log.add))
	if err := client.Cast(ctxTimeout(t, 500*time.Millisecond), compute, "nosuch", 1); err != nil {
		t.Fatalf("cast = %v, want it accepted", err)
	}
	waitFor(t, 10*time.Second, func() error {
		log.mu.Lock()
		defer log.mu.Unlock()
		if len(log.got) != 1 {
			return fmt.Errorf("%d casts reported undelivered, want 1", len(log.got))
		}
		if u := log.got[0]; u.Method != "nosuch" || !errors.Is(u.Err, relay.ErrUndelivered) {
			return fmt.Errorf("reported %s: %v, want nosuch with ErrUndelivered", u.Method, u.Err)
		}
		return nil
	})
	// The server counts the drop once it gives up on the method, which may
	// be after the client's deadline (a just-started node waits a moment
	// for Handle: startGrace).
	waitFor(t, 10*time.Second, func() error {
		if st := server.Stats(); st.AcksSent != 0 || st.FailedCasts == 0 {
			return fmt.Errorf("server AcksSent %d, FailedCasts %d: want no ACK and the drop counted", st.AcksSent, st.FailedCasts)
		}
		return nil
	})
}

// A server that restarts on its old port is reached by its clients as
// soon as it binds, before it serves its targets: a request that arrives
// then waits for Serve and Handle (within startGrace of Start) instead of
// failing with no such method.
func TestRequestBeforeServeWaits(t *testing.T) {
	mm := newMatchmaker(t)
	server := newNode(t, mm, "s0")
	m, err := matchmaker.Open(mm)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	// The client finds the node under the target before it serves it, as
	// a cached route to a restarted server would.
	key := matchmaker.Key{Topic: compute.Topic}
	if err := m.Register(ctxTimeout(t, 5*time.Second), key, server.Endpoint(), time.Minute); err != nil {
		t.Fatal(err)
	}
	client := newNode(t, mm, "client")
	done := make(chan error, 1)
	go func() {
		var got int
		err := client.Call(ctxTimeout(t, 10*time.Second), compute, "add", 2, &got)
		if err == nil && got != 2 {
			err = fmt.Errorf("add 2 = %d", got)
		}
		done <- err
	}()
	waitAtLeast(t, server, "Handlers", func(s relay.Stats) uint64 { return uint64(s.Handlers) }, 1) // the request waits in a handler
	serveDemo(t, server, "s0")
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("a call that reached the node before Serve: %v, want it served once Serve and Handle came", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the call did not end")
	}
}

// A notification that reaches a node before it listens (a listener
// restarted on its old port) waits for Listen, within startGrace of the
// node's start, instead of being dropped at the node.
func TestNotificationBeforeListenWaits(t *testing.T) {
	mm := newMatchmaker(t)
	listener := newNode(t, mm, "l0")
	m, err := matchmaker.Open(mm)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	// The publisher finds the pool's member before the node listens.
	key := matchmaker.Key{Exchange: "$notify", Topic: "billing.info"}
	if err := m.Register(ctxTimeout(t, 5*time.Second), key, "workers|"+listener.Endpoint(), time.Minute); err != nil {
		t.Fatal(err)
	}
	publisher := newNode(t, mm, "publisher")
	if err := publisher.Notify(ctxTimeout(t, 5*time.Second), relay.Notification{Topic: "billing", EventType: "invoice.paid", Payload: 7}); err != nil {
		t.Fatal(err)
	}
	waitAtLeast(t, listener, "Handlers", func(s relay.Stats) uint64 { return uint64(s.Handlers) }, 1) // it waits in a worker
	got := make(chan string, 1)
	if _, err := listener.Listen([]string{"billing"}, "workers", func(_ context.Context, d *relay.Delivery) error {
		got <- d.EventType
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-got:
		if ev != "invoice.paid" {
			t.Errorf("delivered %q, want invoice.paid", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the notification was not delivered once the node listened; listener %+v", listener.Stats())
	}
}

// A server whose socket actor restarts (its clients' connections drop and
// come back at once) is not a server gone: a call with acks running there
// is answered by it, not run again on another server of the topic.
func TestSocketRestartIsNoFailover(t *testing.T) {
	mm := newMatchmaker(t)
	var runs sync.Map // host -> *atomic.Int64
	running := make(chan string, 1)
	servers := map[string]*relay.Node{}
	release := make(chan struct{})
	for _, h := range []string{"s0", "s1"} {
		n := newNode(t, mm, h)
		servers[h] = n
		s, err := n.Serve(compute)
		if err != nil {
			t.Fatal(err)
		}
		s.Handle("slow", func(ctx context.Context, _ *relay.Request) (any, error) {
			v, _ := runs.LoadOrStore(h, new(atomic.Int64))
			v.(*atomic.Int64).Add(1)
			select {
			case running <- h:
			default:
			}
			select { // the call is in flight until the test releases it
			case <-release:
			case <-ctx.Done():
			}
			return h, nil
		})
	}
	client := startWith(t, mm, "client", relay.WithAcks(true), relay.WithRetry(20*time.Millisecond, 2, 0))
	done := make(chan error, 1)
	go func() {
		var got string
		done <- client.Call(ctxTimeout(t, 10*time.Second), compute, "slow", nil, &got)
	}()
	var at string
	select {
	case at = <-running:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler did not start")
	}
	resends := client.Stats().Resends
	if err := servers[at].KillActor(relay.ActorRouter); err != nil {
		t.Fatal(err)
	}
	// The handler runs on until the socket has restarted and the client
	// has resent the call since: to the same server, or (the bug) to
	// another one.
	waitFor(t, 10*time.Second, func() error {
		if servers[at].Restarts(relay.ActorRouter) < 1 || client.Stats().Resends == resends {
			return fmt.Errorf("restarts %d, resends %d", servers[at].Restarts(relay.ActorRouter), client.Stats().Resends-resends)
		}
		return nil
	})
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("call = %v", err)
	}
	total := 0
	runs.Range(func(h, v any) bool {
		total += int(v.(*atomic.Int64).Load())
		if h != at {
			t.Errorf("the call ran on %s too, after %s's socket restarted", h, at)
		}
		return true
	})
	if total != 1 {
		t.Errorf("the handler ran %d times, want once", total)
	}
}
