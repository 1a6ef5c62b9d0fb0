package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relay-dev/relay"
	"github.com/relay-dev/relay/internal/testutil"
	"github.com/relay-dev/relay/matchmaker"
	"github.com/relay-dev/relay/proxy"
	"github.com/relay-dev/relay/supervisor"
)

// A bad option is refused at start with an error that names it; an option
// of the other kind of proxy too.
func TestOptions(t *testing.T) {
	ctx := context.Background()
	mm := proxy.WithMatchmaker(newMatchmaker())
	router := func(opts ...proxy.Option) error {
		p, err := proxy.StartRouter(ctx, append([]proxy.Option{mm}, opts...)...)
		if err == nil {
			p.Close()
		}
		return err
	}
	publisher := func(opts ...proxy.Option) error {
		p, err := proxy.StartPublisher(ctx, append([]proxy.Option{mm}, opts...)...)
		if err == nil {
			p.Close()
		}
		return err
	}
	for _, tc := range []struct {
		start func(...proxy.Option) error
		opts  []proxy.Option
		want  string
	}{
		{router, []proxy.Option{proxy.WithBindAddress("0.0.0.0")}, "WithBindAddress"},
		{router, []proxy.Option{proxy.WithBindAddress("0.0.0.0"), proxy.WithAdvertise("::")}, "WithAdvertise"},
		{router, []proxy.Option{proxy.WithBindAddress("")}, "WithBindAddress"},
		{router, []proxy.Option{proxy.WithPortRange(30000, 20000)}, "WithPortRange"},
		{router, []proxy.Option{proxy.WithRegistrationTTL(time.Millisecond)}, "WithRegistrationTTL"},
		{router, []proxy.Option{proxy.WithLogger(nil)}, "WithLogger"},
		{router, []proxy.Option{proxy.WithSupervisor(supervisor.OneForOne(0, time.Second))}, "WithSupervisor"},
		{router, []proxy.Option{proxy.WithCurve("", "keys/")}, "WithCurve"},
		{router, []proxy.Option{proxy.WithFrontend("127.0.0.1")}, "WithFrontend"},
		{router, []proxy.Option{proxy.WithBackend("127.0.0.1:0")}, "WithBackend"},
		{router, []proxy.Option{proxy.WithAck(true)}, "WithAck"},
		{router, []proxy.Option{proxy.WithLocal(true)}, "WithLocal"},
		{publisher, []proxy.Option{proxy.WithFrontend("127.0.0.1:7100")}, "WithFrontend"},
		{publisher, []proxy.Option{proxy.WithLocal(true), proxy.WithAck(true)}, "WithAck"},
		{publisher, []proxy.Option{proxy.WithLocal(true), proxy.WithHost("")}, "WithHost"},
		{publisher, []proxy.Option{proxy.WithMatchmaker("nosuch://x")}, "WithMatchmaker"},
	} {
		err := tc.start(tc.opts...)
		if err == nil || !strings.Contains(err.Error(), "option "+tc.want) {
			t.Errorf("start with a bad %s: %v, want an error naming it", tc.want, err)
		}
	}
}

// A proxy's socket loop that fails is restarted in place by its
// supervisor, and the proxy stays registered; a loop that fails more
// often than the restart intensity allows makes the proxy unregister at
// once and report the failure on Failed, so that its process can exit and
// be restarted.
func TestFailedBeyondRestartIntensity(t *testing.T) {
	mm := newMatchmaker()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	once := proxy.WithSupervisor(supervisor.OneForOne(1, time.Minute)) // one restart, then give up
	pub, err := proxy.StartPublisher(ctx, proxy.WithMatchmaker(mm), proxy.WithAck(true), once)
	started(t, pub, err)
	router, err := proxy.StartRouter(ctx, proxy.WithMatchmaker(mm), once)
	started(t, router, err)
	for _, p := range []struct {
		name   string
		key    matchmaker.Key
		member string
		proxy  interface {
			Failed() <-chan error
			Restarts() int
			InjectFault(error)
			Close() error
		}
	}{
		{"publisher", proxy.PublishersKey, pub.Endpoints(), pub},
		{"router", proxy.RoutersKey, router.Endpoints(), router},
	} {
		if !registered(t, mm, p.key, p.member) {
			t.Fatalf("%s proxy: %q is not registered under %s", p.name, p.member, p.key)
		}
		quiet(t, p.proxy)
		p.proxy.InjectFault(errFault)
		restarted(t, p.proxy, 1)
		quiet(t, p.proxy)
		if !registered(t, mm, p.key, p.member) {
			t.Fatalf("%s proxy: unregistered after one restart", p.name)
		}
		p.proxy.InjectFault(errFault) // beyond the intensity
		select {
		case err := <-p.proxy.Failed():
			if !errors.Is(err, proxy.ErrFailed) || !strings.Contains(err.Error(), errFault.Error()) {
				t.Errorf("%s proxy: Failed gave %v, want ErrFailed, saying why the loop failed", p.name, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s proxy: no failure reported 10s after its socket loop failed twice", p.name)
		}
		testutil.WaitFor(t, 10*time.Second, func() error {
			if registered(t, mm, p.key, p.member) {
				return fmt.Errorf("%s proxy still registered after it failed", p.name)
			}
			return nil
		})
		if err := p.proxy.Close(); err != nil {
			t.Errorf("close %s proxy after its failure: %v", p.name, err)
		}
	}
}

// A real socket failure in a router proxy's loop (not a crash through the
// actor's middleware) while calls flow through it: the loop is restarted
// on the same ports, the registration stays, every call still gets its
// reply before its deadline (what the failed loop held is resent, acks
// on), and each handler ran once per msg_id.
func TestRouterRestartsInPlace(t *testing.T) {
	mm := newMatchmaker()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	router, err := proxy.StartRouter(ctx, proxy.WithMatchmaker(mm))
	started(t, router, err)
	member := router.Endpoints()
	opts := []relay.Option{relay.WithRouterProxy(true), relay.WithAcks(true), relay.WithRetry(50*time.Millisecond, 2, 0)}
	srv, err := newNode(t, mm, "s0", opts...).Serve(relay.Target{Topic: "compute"})
	if err != nil {
		t.Fatal(err)
	}
	runs := newRunCounter()
	srv.Handle("echo", runs.echo)
	client := newNode(t, mm, "client", opts...)
	call := func(i int) error {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		var got int
		if err := client.Call(cctx, relay.Target{Topic: "compute", Server: "s0"}, "echo", i, &got); err != nil {
			return fmt.Errorf("call %d: %w", i, err)
		}
		if got != i {
			return fmt.Errorf("echo %d = %d", i, got)
		}
		return nil
	}
	testutil.WaitFor(t, 10*time.Second, func() error { return call(-1) })
	routed, _, _ := router.Counts()

	// Two callers call without pause until told to stop; the fault
	// strikes while they do.
	const callers = 2
	stop := make(chan struct{})
	errs := make(chan error, callers)
	var made atomic.Int64
	for c := range callers {
		go func() {
			for i := c; ; i += callers {
				select {
				case <-stop:
					errs <- nil
					return
				default:
				}
				if err := call(i); err != nil {
					errs <- err
					return
				}
				made.Add(1)
			}
		}()
	}
	waitCalls := func(n int64) {
		testutil.WaitFor(t, 20*time.Second, func() error {
			if got := made.Load(); got < n {
				return fmt.Errorf("%d calls made, want %d", got, n)
			}
			return nil
		})
	}
	waitCalls(20)
	router.InjectFault(errFault)
	restarted(t, router, 1)
	waitCalls(made.Load() + 50) // through the new loop
	close(stop)
	for range callers {
		if err := <-errs; err != nil {
			r, f, d := router.Counts()
			t.Fatalf("a call across the restart: %v (proxy routed %d, refused %d, dropped %d)", err, r, f, d)
		}
	}
	quiet(t, router)
	// Until the server says HELLO on the new loop's connection its
	// requests are refused: calls did cross the restart.
	if st := client.Stats(); st.Resends == 0 {
		t.Errorf("no call was resent across the restart (client stats %+v): the fault struck no call", st)
	}
	if after, _, _ := router.Counts(); after < routed+50 {
		t.Errorf("proxy routed %d calls after its restart, want at least 50", after-routed)
	}
	if ids, again := runs.counts(); again > 0 {
		t.Errorf("handler ran again for %d of %d msg_ids", again, ids)
	}
	if router.Endpoints() != member || !registered(t, mm, proxy.RoutersKey, member) {
		t.Errorf("after the restart the proxy registers %q (registered: %v), want %q still", router.Endpoints(),
			registered(t, mm, proxy.RoutersKey, member), member)
	}
}

// A real socket failure in a central or a local publisher proxy's loop:
// it is restarted in place (a local one subscribes to the central ones
// again), and fanouts reach every subscriber through it again.
func TestPublisherRestartsInPlace(t *testing.T) {
	for _, local := range []bool{false, true} {
		name := map[bool]string{false: "central", true: "local"}[local]
		t.Run(name, func(t *testing.T) {
			mm := newMatchmaker()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			central, err := proxy.StartPublisher(ctx, proxy.WithMatchmaker(mm), proxy.WithAck(true))
			started(t, central, err)
			faulty := central
			if local {
				lp, err := proxy.StartPublisher(ctx, proxy.WithMatchmaker(mm), proxy.WithLocal(true), proxy.WithHost("h1"))
				faulty = started(t, lp, err)
			}
			ps := relay.WithPubSub(true)
			var subs []*testutil.FanoutCounter
			for range 2 {
				subs = append(subs, testutil.ServeCounter(t, newNode(t, mm, "h1", ps), "events"))
			}
			pub := newNode(t, mm, "pub", ps, relay.WithAcks(true))
			testutil.WaitSubscribed(t, pub, "events", 15*time.Second, subs...)
			publish := func(from, to int) {
				for i := from; i < to; i++ {
					if err := pub.Cast(ctx, relay.Target{Topic: "events", Fanout: true}, "event", i); err != nil {
						t.Fatalf("fanout %d: %v", i, err)
					}
				}
			}
			wait := func(n int) {
				testutil.WaitFor(t, 20*time.Second, func() error {
					for i, c := range subs {
						if err := c.Check(n); err != nil {
							return fmt.Errorf("subscriber %d: %v", i, err)
						}
					}
					return nil
				})
			}
			publish(0, 20)
			wait(20)

			// Fanouts flow while the fault strikes; what the failed
			// loop held, or published before the subscribers were back,
			// may be lost to them (PUB/SUB), but no Cast fails.
			stop, done := make(chan struct{}), make(chan error, 1)
			go func() {
				for i := 100; ; i++ {
					select {
					case <-stop:
						done <- nil
						return
					default:
					}
					if err := pub.Cast(ctx, relay.Target{Topic: "events", Fanout: true}, "event", i); err != nil {
						done <- fmt.Errorf("fanout %d: %w", i, err)
						return
					}
				}
			}()
			faulty.InjectFault(errFault)
			restarted(t, faulty, 1)
			close(stop)
			if err := <-done; err != nil {
				t.Fatalf("while the proxy restarted: %v", err)
			}
			// The subscribers reconnect to the same port: once a probe
			// reaches them all again, every fanout does.
			testutil.WaitSubscribed(t, pub, "events", 15*time.Second, subs...)
			publish(100000, 100020)
			testutil.WaitFor(t, 20*time.Second, func() error {
				for i, c := range subs {
					if lost, dup := c.TallyRange(100000, 100020); lost+dup > 0 {
						return fmt.Errorf("subscriber %d: of the 20 fanouts after the restart, %d lost, %d handled twice", i, lost, dup)
					}
				}
				return nil
			})
			quiet(t, faulty)
			quiet(t, central)
		})
	}
}
