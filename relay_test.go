package relay_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/relay-dev/relay"
	"github.com/relay-dev/relay/envelope"
	"github.com/relay-dev/relay/internal/demo"
	"github.com/relay-dev/relay/sockets"
	"github.com/relay-dev/relay/supervisor"
)

// callInt calls method with args on t and returns its int64 reply, failing
// the test on error.
func callInt(t testing.TB, n *relay.Node, tg relay.Target, method string, args any) int64 {
	t.Helper()
	var r int64
	if err := n.Call(ctxTimeout(t, 10*time.Second), tg, method, args, &r); err != nil {
		t.Fatalf("call %s %v on %s: %v", method, args, tg, err)
	}
	return r
}

// states returns every endpoint's state.
func states(eps []*demo.Endpoint) []demo.State {
	var s []demo.State
	for _, ep := range eps {
		s = append(s, ep.State())
	}
	return s
}

// TestDirectedCall: a call directed at one server changes that server only.
func TestDirectedCall(t *testing.T) {
	_, nodes, eps := newCluster(t, 3)
	client := nodes[3]
	want := make([]demo.State, 3)
	for i, ep := range eps {
		want[i].Host = ep.Host
	}
	for i, host := range []string{"s1", "s0", "s2"} {
		idx := int(host[1] - '0')
		by := int64(10 * (i + 1))
		want[idx].Int += by
		if got := callInt(t, client, directed(host), "add", by); got != want[idx].Int {
			t.Errorf("add %d on %s = %d, want %d", by, host, got, want[idx].Int)
		}
		var s string
		if err := client.Call(ctxTimeout(t, 10*time.Second), directed(host), "append", host, &s); err != nil {
			t.Fatalf("append on %s: %v", host, err)
		}
		want[idx].Str += host
		if s != want[idx].Str {
			t.Errorf("append %q on %s = %q, want %q", host, host, s, want[idx].Str)
		}
		if got := states(eps); !slices.Equal(got, want) {
			t.Fatalf("after calls directed at %s: states %+v, want %+v", host, got, want)
		}
	}
	// get, directed, answers from the server named, with its own state.
	for i, host := range []string{"s0", "s1", "s2"} {
		var st demo.State
		if err := client.Call(ctxTimeout(t, 10*time.Second), directed(host), "get", nil, &st); err != nil {
			t.Fatalf("get on %s: %v", host, err)
		}
		if st != want[i] {
			t.Errorf("get on %s = %+v, want %+v", host, st, want[i])
		}
	}
}

// TestRoundRobin: calls to the bare topic go round-robin over the servers,
// each server receiving its share in send order.
func TestRoundRobin(t *testing.T) {
	_, nodes, eps := newCluster(t, 3)
	client := nodes[3]
	for i := int64(1); i <= 14; i++ {
		callInt(t, client, compute, "add", i)
	}
	var counts []int
	var total int64
	for _, ep := range eps {
		adds := ep.Adds()
		counts = append(counts, len(adds))
		for j, a := range adds {
			total += a
			// Round-robin over 3 servers: each gets every third call.
			if j > 0 && a != adds[j-1]+3 {
				t.Errorf("%s received adds %v: not every third call in send order", ep.Host, adds)
				break
			}
		}
	}
	slices.Sort(counts)
	if !slices.Equal(counts, []int{4, 5, 5}) {
		t.Errorf("calls per server %v, want 5/5/4 in some order", counts)
	}
	if total != 14*15/2 {
		t.Errorf("sum of adds received %d, want %d", total, 14*15/2)
	}
}

// TestNoServers: a call to a topic nobody serves fails fast with
// ErrNoServers (after the discovery wait, not the call's deadline).
func TestNoServers(t *testing.T) {
	mm := newMatchmaker(t)
	client := newNode(t, mm, "client")
	start := time.Now()
	err := client.Call(ctxTimeout(t, 10*time.Second), relay.Target{Topic: "nobody"}, "add", 1, nil)
	if !errors.Is(err, relay.ErrNoServers) {
		t.Fatalf("call to a topic with no server = %v, want ErrNoServers", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("ErrNoServers after %v, want within 2s", d)
	}
	if err := client.Cast(ctxTimeout(t, 10*time.Second), relay.Target{Topic: "nobody"}, "add", 1); !errors.Is(err, relay.ErrNoServers) {
		t.Errorf("cast to a topic with no server = %v, want ErrNoServers", err)
	}
}

// TestCallTimeout: a call that outlives its deadline fails with ErrTimeout
// at the deadline, while the server keeps answering other calls.
func TestCallTimeout(t *testing.T) {
	mm, nodes, eps := newCluster(t, 3)
	client := nodes[3]

	t.Run("ctx deadline", func(t *testing.T) {
		type result struct {
			err     error
			elapsed time.Duration
		}
		done := make(chan result, 1)
		go func() {
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			err := client.Call(ctx, directed("s0"), "sleep", 2000, nil)
			done <- result{err, time.Since(start)}
		}()

		// Meanwhile the same server answers short calls.
		var wg sync.WaitGroup
		for i := range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var r int64
				if err := client.Call(ctxTimeout(t, 10*time.Second), directed("s0"), "add", 1, &r); err != nil {
					t.Errorf("short call %d during the long one: %v", i, err)
				}
			}()
		}
		wg.Wait()
		select {
		case r := <-done:
			t.Errorf("long call ended (%v after %v) before the 10 short ones did", r.err, r.elapsed)
		default:
		}
		if got := eps[0].State().Int; got != 10 {
			t.Errorf("s0 counter %d after 10 adds of 1, want 10", got)
		}

		r := <-done
		if !errors.Is(r.err, relay.ErrTimeout) || !errors.Is(r.err, context.DeadlineExceeded) {
			t.Fatalf("call past its ctx deadline = %v, want ErrTimeout and context.DeadlineExceeded", r.err)
		}
		if r.elapsed < 300*time.Millisecond || r.elapsed > time.Second {
			t.Errorf("call with a 300ms deadline returned after %v, want 300ms-1s", r.elapsed)
		}
	})

	t.Run("WithCallTimeout", func(t *testing.T) {
		c2 := newNode(t, mm, "client-300ms", relay.WithCallTimeout(300*time.Millisecond))
		start := time.Now()
		err := c2.Call(context.Background(), directed("s1"), "sleep", 2000, nil)
		elapsed := time.Since(start)
		if !errors.Is(err, relay.ErrTimeout) {
			t.Fatalf("call past WithCallTimeout = %v, want ErrTimeout", err)
		}
		if errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("call past WithCallTimeout (no ctx deadline) = %v, must not match context.DeadlineExceeded", err)
		}
		if elapsed < 300*time.Millisecond || elapsed > time.Second {
			t.Errorf("call with WithCallTimeout(300ms) returned after %v, want 300ms-1s", elapsed)
		}
	})
}

// TestRemoteErrors: handler errors and panics reach the caller as
// *RemoteError; calls nothing handles are ErrNoSuchMethod.
func TestRemoteErrors(t *testing.T) {
	_, nodes, _ := newClusterWith(t, 3, func(i int, srv *relay.Server) {
		srv.Handle("boom", func(context.Context, *relay.Request) (any, error) { panic("kaboom") })
		srv.Handle("custom", func(context.Context, *relay.Request) (any, error) {
			return nil, &relay.RemoteError{Code: "Custom", Message: "custom failure"}
		})
	})
	client := nodes[3]
	ctx := ctxTimeout(t, 30*time.Second)

	t.Run("handler error", func(t *testing.T) {
		callInt(t, client, directed("s0"), "add", 3)
		err := client.Call(ctx, directed("s0"), "subtract", 4, nil)
		var re *relay.RemoteError
		if !errors.As(err, &re) {
			t.Fatalf("subtract past zero = %v (%T), want *RemoteError", err, err)
		}
		if re.Code != "NegativeError" || re.Message != "subtracting 4 from 3 would go negative" {
			t.Errorf("subtract past zero = %+v, want Code NegativeError, Message %q", re, "subtracting 4 from 3 would go negative")
		}
		// A handler's own *RemoteError keeps its Code and Message as is.
		err = client.Call(ctx, directed("s0"), "custom", nil, nil)
		if !errors.As(err, &re) || re.Code != "Custom" || re.Message != "custom failure" {
			t.Errorf("handler returning *RemoteError = %v, want Code Custom, Message %q", err, "custom failure")
		}
	})

	t.Run("panic", func(t *testing.T) {
		err := client.Call(ctx, directed("s1"), "boom", nil, nil)
		var re *relay.RemoteError
		if !errors.As(err, &re) || re.Code != relay.CodePanic {
			t.Fatalf("call of a panicking handler = %v, want *RemoteError with Code %q", err, relay.CodePanic)
		}
		if !strings.Contains(re.Message, "kaboom") {
			t.Errorf("panic message %q does not say what panicked (kaboom)", re.Message)
		}
		if got := callInt(t, client, directed("s1"), "add", 2); got != 2 {
			t.Errorf("add on s1 after a panic = %d, want 2", got)
		}
		if got := nodes[1].Stats().HandlerPanics; got != 1 {
			t.Errorf("s1 HandlerPanics = %d, want 1", got)
		}
	})

	t.Run("no such method", func(t *testing.T) {
		if err := client.Call(ctx, compute, "nope", nil, nil); !errors.Is(err, relay.ErrNoSuchMethod) {
			t.Errorf("unknown method = %v, want ErrNoSuchMethod", err)
		}
		other := compute
		other.Namespace = "admin"
		if err := client.Call(ctx, other, "add", 1, nil); !errors.Is(err, relay.ErrNoSuchMethod) {
			t.Errorf("wrong namespace = %v, want ErrNoSuchMethod", err)
		}
	})

	t.Run("versions", func(t *testing.T) {
		versioned := relay.Target{Topic: "versioned", Version: "1.2"}
		srv, err := nodes[0].Serve(versioned)
		if err != nil {
			t.Fatal(err)
		}
		srv.Handle("version", func(context.Context, *relay.Request) (any, error) { return "1.2", nil })
		for _, v := range []string{"", "1", "1.0", "1.1", "1.2"} {
			var got string
			if err := client.Call(ctx, relay.Target{Topic: "versioned", Version: v}, "version", nil, &got); err != nil || got != "1.2" {
				t.Errorf("call of version %q on a 1.2 server = %q, %v; want 1.2, nil", v, got, err)
			}
		}
		for _, v := range []string{"1.3", "2.0", "0.9"} {
			if err := client.Call(ctx, relay.Target{Topic: "versioned", Version: v}, "version", nil, nil); !errors.Is(err, relay.ErrNoSuchMethod) {
				t.Errorf("call of version %q on a 1.2 server = %v, want ErrNoSuchMethod", v, err)
			}
		}
	})
}

// TestCasts: a directed cast reaches its server only; casts to the bare
// topic are spread over the servers.
func TestCasts(t *testing.T) {
	_, nodes, eps := newCluster(t, 3)
	client := nodes[3]
	ctx := ctxTimeout(t, 30*time.Second)

	if err := client.Cast(ctx, directed("s1"), "add", 7); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() error {
		if got := eps[1].State().Int; got != 7 {
			return fmt.Errorf("s1 counter %d, want 7", got)
		}
		return nil
	})
	if err := client.Cast(ctx, directed("s2"), "add", 5); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() error {
		if got := eps[2].State().Int; got != 5 {
			return fmt.Errorf("s2 counter %d, want 5", got)
		}
		return nil
	})
	if got := []int64{eps[0].State().Int, eps[1].State().Int}; !slices.Equal(got, []int64{0, 7}) {
		t.Errorf("after directed casts to s1 and s2: s0, s1 counters %v, want [0 7]", got)
	}

	// Casts to the bare topic go round-robin: cast i (adding 100+i) goes
	// to server (start+i) mod 3, so each server gets one residue class.
	const n = 20
	for i := range n {
		if err := client.Cast(ctx, compute, "add", 100+i); err != nil {
			t.Fatal(err)
		}
	}
	before := []int{0, 1, 1} // the directed casts
	waitFor(t, 5*time.Second, func() error {
		total := 0
		for i, ep := range eps {
			total += ep.Casts() - before[i]
		}
		if total != n {
			return fmt.Errorf("%d casts to the topic arrived, want %d", total, n)
		}
		return nil
	})
	checkRoundRobin(t, eps, before, n, func(a int64) (int, bool) { return int(a - 100), a >= 100 })
	if got := eps[0].State().Int + eps[1].State().Int + eps[2].State().Int; got != 7+5+int64(n*100+n*(n-1)/2) {
		t.Errorf("sum of counters %d, want %d", got, 7+5+n*100+n*(n-1)/2)
	}
}

// checkRoundRobin checks that n requests numbered 0..n-1 (seq reads the
// number from an add's argument; false: not one of them) were spread
// round-robin over eps: each server got every len(eps)-th one, so their
// counts differ by at most one. skip[i] adds of eps[i] come first and are
// not among them.
func checkRoundRobin(t testing.TB, eps []*demo.Endpoint, skip []int, n int, seq func(int64) (int, bool)) {
	t.Helper()
	residue := map[int]string{}
	var counts []int
	for i, ep := range eps {
		got := 0
		for _, a := range ep.Adds()[skip[i]:] {
			k, ok := seq(a)
			if !ok {
				continue
			}
			got++
			r := k % len(eps)
			if other, taken := residue[r]; taken && other != ep.Host {
				t.Errorf("requests %d apart went to %s and %s: not round-robin", len(eps), other, ep.Host)
			}
			residue[r] = ep.Host
		}
		counts = append(counts, got)
	}
	slices.Sort(counts)
	want := make([]int, len(eps))
	for i := range want {
		want[i] = n / len(eps)
		if len(eps)-1-i < n%len(eps) {
			want[i]++
		}
	}
	if !slices.Equal(counts, want) {
		t.Errorf("%d requests per server %v, want %v in some order", n, counts, want)
	}
}

// TestCorrelationUnderLoad: many concurrent calls each get their own reply.
func TestCorrelationUnderLoad(t *testing.T) {
	_, nodes, _ := newClusterWith(t, 3, func(i int, srv *relay.Server) {
		srv.Handle("echo", func(_ context.Context, r *relay.Request) (any, error) {
			var v int64
			err := r.Decode(&v)
			return v, err
		})
	})
	client := nodes[3]
	goroutines, calls := 32, 1000
	start := time.Now()
	var wg sync.WaitGroup
	var bad atomic.Int64
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range calls {
				arg := int64(g*1_000_000 + i)
				var got int64
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				err := client.Call(ctx, compute, "echo", arg, &got)
				cancel()
				if err != nil || got != arg {
					if bad.Add(1) <= 10 {
						t.Errorf("echo %d = %d, %v", arg, got, err)
					}
					if err != nil {
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	if n := bad.Load(); n > 0 {
		t.Errorf("%d of %d calls got a wrong reply or failed", n, goroutines*calls)
	}
	t.Logf("%d goroutines x %d calls in %v", goroutines, calls, time.Since(start))
}

// TestKillActors: each actor of a client and of a server, killed under
// load (KillActor), and each socket actor failed through its loop's own
// error path (InjectFault: a socket error, OnFail, the restart), is
// restarted; calls made after the restart succeed, calls caught by the
// kill fail with a typed error, and nothing leaks. The fanout-subscriber
// (pub/sub mode only) is failed the same way in testKillSubscriber.
func TestKillActors(t *testing.T) {
	for _, side := range []string{"client", "server"} {
		for _, actor := range []string{relay.ActorRouter, relay.ActorDealers, relay.ActorResender, relay.ActorHandlers} {
			t.Run(side+"/"+actor, func(t *testing.T) { testKillActor(t, side, actor, false) })
		}
		for _, actor := range []string{relay.ActorRouter, relay.ActorDealers} {
			if side == "server" && actor == relay.ActorDealers {
				continue // it holds no socket: the server sends nothing through DEALERs here
			}
			t.Run(side+"/"+actor+"/socket-error", func(t *testing.T) { testKillActor(t, side, actor, true) })
		}
	}
	t.Run("server/"+relay.ActorSubscriber+"/socket-error", testKillSubscriber)
}

// errInjected is the socket error InjectFault makes a loop fail with.
var errInjected = errors.New("injected socket error")

// testKillActor kills actor of side under load: with KillActor, or with
// socketError through InjectFault.
func testKillActor(t *testing.T, side, actor string, socketError bool) {
	mm := newMatchmaker(t)
	server := newNode(t, mm, "s0")
	ep := &demo.Endpoint{Host: "s0"}
	srv, err := server.Serve(compute)
	if err != nil {
		t.Fatal(err)
	}
	ep.Register(srv)
	client := newNode(t, mm, "client")
	victim := client
	if side == "server" {
		victim = server
	}

	// Load: callers in a loop, each call with a 1s deadline.
	type failure struct {
		err     error
		elapsed time.Duration
	}
	var (
		stop     = make(chan struct{})
		wg       sync.WaitGroup
		mu       sync.Mutex
		failures []failure
		ok       atomic.Int64
	)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				err := client.Call(ctx, directed("s0"), "add", 1, nil)
				cancel()
				if err == nil {
					ok.Add(1)
					continue
				}
				mu.Lock()
				failures = append(failures, failure{err, time.Since(start)})
				mu.Unlock()
			}
		}()
	}
	stopLoad := func() {
		select {
		case <-stop:
			return
		default:
		}
		close(stop)
		wg.Wait()
	}
	defer stopLoad()

	waitFor(t, 10*time.Second, func() error {
		if ok.Load() < 100 {
			return fmt.Errorf("%d calls succeeded before the kill, want 100", ok.Load())
		}
		return nil
	})
	kill := victim.KillActor
	if socketError {
		kill = func(actor string) error { return victim.InjectFault(actor, errInjected) }
	}
	if err := kill(actor); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() error {
		if n := victim.Restarts(actor); n < 1 {
			return fmt.Errorf("%s of %s restarted %d times, want 1", actor, side, n)
		}
		return nil
	})
	if socketError && victim.Stats().LoopFailures < 1 {
		t.Errorf("%s of %s restarted without a loop failure: the fault did not take the socket error path", actor, side)
	}
	// The first call after the restart may still be caught by it; then every
	// call must succeed.
	waitFor(t, 10*time.Second, func() error {
		return client.Call(ctxTimeout(t, time.Second), directed("s0"), "add", 1, nil)
	})
	for i := range 20 {
		if err := client.Call(ctxTimeout(t, 5*time.Second), directed("s0"), "add", 1, nil); err != nil {
			t.Fatalf("call %d after %s of %s restarted: %v", i, actor, side, err)
		}
	}
	stopLoad()

	mu.Lock()
	for _, f := range failures {
		if !errors.Is(f.err, relay.ErrTimeout) && !errors.Is(f.err, relay.ErrBackPressure) {
			t.Errorf("call caught by the kill failed with %v (%T), want ErrTimeout or ErrBackPressure", f.err, f.err)
		}
		if f.elapsed > 2*time.Second {
			t.Errorf("call with a 1s deadline failed after %v: %v", f.elapsed, f.err)
		}
	}
	t.Logf("%s of %s: %d calls ok, %d failed; restarts %v", actor, side, ok.Load(), len(failures), victim.Stats().Restarts)
	mu.Unlock()
	if st := victim.Stats(); st.Restarts[actor] != 1 {
		t.Errorf("restarts %v, want 1 of %s only", st.Restarts, actor)
	}

	// Close explicitly (the cleanups would run after deferred calls) and
	// check that the restarted actors left nothing behind.
	for _, n := range []*relay.Node{client, server} {
		if err := n.Close(); err != nil {
			t.Errorf("close %s: %v", n.Host(), err)
		}
	}
	goleak.VerifyNone(t)
}

// TestClientBeforeServer: a call issued before any server serves its topic
// waits for one (up to the discovery wait) and succeeds.
func TestClientBeforeServer(t *testing.T) {
	mm := newMatchmaker(t)
	server := newNode(t, mm, "late")
	client := newNode(t, mm, "client")
	late := relay.Target{Topic: "late"}
	type result struct {
		n   int64
		err error
	}
	done := make(chan result, 1)
	go func() {
		var n int64
		err := client.Call(ctxTimeout(t, 10*time.Second), late, "add", 1, &n)
		done <- result{n, err}
	}()
	// The scenario: the server comes up while the call waits in discovery
	// (up to 1 s); 200 ms into that wait is the point of the test, not
	// synchronisation.
	<-time.After(200 * time.Millisecond)
	select {
	case r := <-done:
		t.Fatalf("call returned (%d, %v) before its topic had a server", r.n, r.err)
	default:
	}
	srv, err := server.Serve(late)
	if err != nil {
		t.Fatal(err)
	}
	ep := &demo.Endpoint{Host: "late"}
	ep.Register(srv)
	r := <-done
	// Serve registers the target before Handle adds the methods; a call
	// that reaches the server in between waits for Handle (handleGrace),
	// so it must succeed.
	if r.err != nil {
		t.Fatalf("call waiting for its server: %v", r.err)
	}
	if r.n != 1 || ep.State().Int != 1 {
		t.Fatalf("call waiting for its server = %d, server counter %d; want 1, 1", r.n, ep.State().Int)
	}
}

// TestMalformedFrames: a server drops and counts malformed messages sent
// straight to its ROUTER, and keeps serving.
func TestMalformedFrames(t *testing.T) {
	_, nodes, eps := newCluster(t, 1)
	server, client := nodes[0], nodes[1]

	valid := envelope.Header{
		Kind: envelope.KindCast, ID: envelope.NewMsgID(),
		Target: envelope.Target{Topic: "compute"}, Method: "add",
	}
	body, err := envelope.EncodeBody(int64(5))
	if err != nil {
		t.Fatal(err)
	}
	rec := valid.AppendRecord(nil, body)
	mutate := func(f func(b []byte) []byte) []byte { return f(slices.Clone(rec)) }
	cast := func() []byte { // a valid cast of add 5 with a fresh msg_id
		h := valid
		h.ID = envelope.NewMsgID()
		return h.AppendRecord(nil, body)
	}
	malformed := []struct {
		name   string
		frames [][]byte
	}{
		{"two frames", [][]byte{[]byte("junk"), rec}},
		{"one empty frame", [][]byte{{}}},
		{"junk record", [][]byte{[]byte("\x02 is not a record")}},
		{"bad kind", [][]byte{mutate(func(b []byte) []byte { b[1] = 0xee; return b })}},
		{"truncated body", [][]byte{mutate(func(b []byte) []byte { return b[:len(b)-1] })}},
		{"truncated fixed part", [][]byte{rec[:10]}},
		{"field length past the end", [][]byte{mutate(func(b []byte) []byte { b[28], b[29] = 0x0f, 0xff; return b })}},
		{"trailing byte", [][]byte{mutate(func(b []byte) []byte { return append(b, envelope.Version) })}},
		{"five frames", [][]byte{rec, rec, rec, rec, rec}},
		// A batch whose second record is cut short: the first is served,
		// the rest of the batch is dropped and counted once.
		{"batch with a truncated record", [][]byte{append(cast(), cast()[:30]...)}},
	}
	for i, m := range malformed {
		if err := sockets.SendRaw(ctxTimeout(t, 5*time.Second), server.Endpoint(), m.frames...); err != nil {
			t.Fatalf("send %s: %v", m.name, err)
		}
		waitFor(t, 5*time.Second, func() error {
			if got := server.Stats().Malformed; got != uint64(i+1) {
				return fmt.Errorf("after %q: Malformed = %d, want %d", m.name, got, i+1)
			}
			return nil
		})
	}
	want := uint64(len(malformed))
	waitFor(t, 5*time.Second, func() error {
		if got := server.Stats().Malformed; got < want {
			return fmt.Errorf("Malformed = %d, want %d", got, want)
		}
		return nil
	})
	// A record of another protocol version is counted apart.
	for _, version := range []byte{1, 9} {
		if err := sockets.SendRaw(ctxTimeout(t, 5*time.Second), server.Endpoint(), mutate(func(b []byte) []byte { b[0] = version; return b })); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, func() error {
		if got := server.Stats().UnknownVersion; got != 2 {
			return fmt.Errorf("UnknownVersion = %d, want 2", got)
		}
		return nil
	})

	// A well-formed message of a kind servers do not take is counted apart.
	reply := valid
	reply.Kind = envelope.KindReply
	if err := sockets.SendRaw(ctxTimeout(t, 5*time.Second), server.Endpoint(), reply.AppendRecord(nil, body)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() error {
		if got := server.Stats().UnexpectedKind; got != 1 {
			return fmt.Errorf("UnexpectedKind = %d, want 1", got)
		}
		return nil
	})
	// The good records before the damage ("trailing byte", the cut batch)
	// were served; a valid batch of two casts sent the same way is served
	// whole: the raw path works.
	if err := sockets.SendRaw(ctxTimeout(t, 5*time.Second), server.Endpoint(), append(cast(), cast()...)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() error {
		if got := eps[0].State().Int; got != 20 {
			return fmt.Errorf("counter %d after four raw casts of add 5, want 20", got)
		}
		return nil
	})

	if got := callInt(t, client, compute, "add", 1); got != 21 {
		t.Errorf("add 1 after the garbage = %d, want 21", got)
	}
	st := server.Stats()
	if st.Malformed != want {
		t.Errorf("Malformed = %d, want %d", st.Malformed, want)
	}
	if st.LoopFailures != 0 || st.Restarts[relay.ActorRouter] != 0 {
		t.Errorf("garbage made the poller fail: %+v", st)
	}
}

// TestOptionsAndClose: Start rejects bad options by name; a closed node
// returns ErrClosed; Close is idempotent.
func TestOptionsAndClose(t *testing.T) {
	ctx := ctxTimeout(t, 30*time.Second)
	for _, c := range []struct {
		opt  relay.Option
		name string
	}{
		{relay.WithCallTimeout(0), "WithCallTimeout"},
		{relay.WithMatchmaker("bogus://x"), "WithMatchmaker"},
		{relay.WithMatchmaker("memory://"), "WithMatchmaker"},
		{relay.WithPortRange(2000, 1000), "WithPortRange"},
		{relay.WithQueueSize(0), "WithQueueSize"},
		{relay.WithHost(""), "WithHost"},
		{relay.WithDiscoveryWait(-time.Second), "WithDiscoveryWait"},
		{relay.WithLogger(nil), "WithLogger"},
		{relay.WithBindAddress(""), "WithBindAddress"},
		{relay.WithRegistrationTTL(time.Millisecond), "WithRegistrationTTL"},
		{relay.WithDrainTimeout(-time.Second), "WithDrainTimeout"},
		{relay.WithHighWaterMark(0), "WithHighWaterMark"},
		{relay.WithMaxMessageSize(100), "WithMaxMessageSize"},
		{relay.WithRetry(0, 2, 1), "WithRetry"},
		{relay.WithRetry(time.Millisecond, 0.5, 1), "WithRetry"},
		{relay.WithMaxHandlers(0), "WithMaxHandlers"},
		{relay.WithDedupTTL(0), "WithDedupTTL"},
		{relay.WithHeartbeat(0, time.Second), "WithHeartbeat"},
		{relay.WithHeartbeat(time.Second, time.Millisecond), "WithHeartbeat"},
		{relay.WithSupervisor(supervisor.OneForOne(0, time.Second)), "WithSupervisor"},
		{relay.WithSupervisor(supervisor.OneForOne(1, 1000)), "WithSupervisor"},
	} {
		n, err := relay.Start(ctx, c.opt)
		if err == nil {
			n.Close()
			t.Errorf("Start with a bad %s succeeded", c.name)
			continue
		}
		if !strings.Contains(err.Error(), c.name) {
			t.Errorf("Start with a bad %s = %v, want an error naming %s", c.name, err, c.name)
		}
	}

	started, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	mm, nodes, _ := newClusterWith(t, 1, func(_ int, srv *relay.Server) {
		srv.Handle("block", func(ctx context.Context, _ *relay.Request) (any, error) {
			once.Do(func() { close(started) })
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil, nil
		})
	})
	var releaseOnce sync.Once
	releaseAll := func() { releaseOnce.Do(func() { close(release) }) }
	defer releaseAll()
	client := nodes[1]
	callInt(t, client, compute, "add", 1)

	// A call in flight when its node closes ends with ErrClosed.
	inflight := make(chan error, 1)
	go func() { inflight <- client.Call(ctx, compute, "block", nil, nil) }()
	<-started
	if err := client.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-inflight:
		if !errors.Is(err, relay.ErrClosed) {
			t.Errorf("call in flight at Close = %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("call in flight at Close still blocked 5s later")
	}
	if err := client.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	if err := client.Call(ctx, compute, "add", 1, nil); !errors.Is(err, relay.ErrClosed) {
		t.Errorf("Call after Close = %v, want ErrClosed", err)
	}
	if err := client.Cast(ctx, compute, "add", 1); !errors.Is(err, relay.ErrClosed) {
		t.Errorf("Cast after Close = %v, want ErrClosed", err)
	}
	if _, err := client.Serve(relay.Target{Topic: "after"}); !errors.Is(err, relay.ErrClosed) {
		t.Errorf("Serve after Close = %v, want ErrClosed", err)
	}
	if err := client.KillActor(relay.ActorDealers); !errors.Is(err, relay.ErrClosed) {
		t.Errorf("KillActor after Close = %v, want ErrClosed", err)
	}

	// A closed server is unregistered: another client finds no server.
	releaseAll()
	if err := nodes[0].Close(); err != nil {
		t.Fatalf("close server: %v", err)
	}
	c2 := newNode(t, mm, "client2", relay.WithDiscoveryWait(100*time.Millisecond))
	if err := c2.Call(ctx, compute, "add", 1, nil); !errors.Is(err, relay.ErrNoServers) {
		t.Errorf("call after the only server closed = %v, want ErrNoServers", err)
	}
}
