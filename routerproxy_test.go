package relay_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relay-dev/relay"
	"github.com/relay-dev/relay/internal/demo"
	"github.com/relay-dev/relay/matchmaker"
	"github.com/relay-dev/relay/proxy"
)

func startRouterProxy(t *testing.T, mm string) *proxy.Router {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := proxy.StartRouter(ctx, proxy.WithMatchmaker(mm))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("close router proxy: %v", err)
		}
	})
	return p
}

// Calls and casts through 3 router proxies: the core scenarios, then one
// proxy goes away under load and nothing is lost or wrong.
func TestRouterProxy(t *testing.T) {
	mm := newMatchmaker(t)
	// Settings that disagree with the deployment fail at start, clearly.
	if n, err := relay.Start(context.Background(), relay.WithMatchmaker(mm), relay.WithRouterProxy(true)); err == nil {
		n.Close()
		t.Fatal("Start in router-proxy mode with no router proxy registered succeeded")
	} else if !strings.Contains(err.Error(), "WithRouterProxy") || !strings.Contains(err.Error(), "node proxy --router") {
		t.Errorf("Start with no router proxy: %v; want it to name the option and the fix", err)
	}
	var proxies []*proxy.Router
	for i := 0; i < 3; i++ {
		proxies = append(proxies, startRouterProxy(t, mm))
	}
	rp := relay.WithRouterProxy(true)
	var eps []*demo.Endpoint
	var mu sync.Mutex
	applied := map[int]int{}
	for i := 0; i < 3; i++ {
		host := fmt.Sprintf("s%d", i)
		n := newNode(t, mm, host, rp, relay.WithAcks(true))
		s, err := n.Serve(compute)
		if err != nil {
			t.Fatal(err)
		}
		ep := &demo.Endpoint{Host: host}
		ep.Register(s)
		s.Handle("echo", func(_ context.Context, r *relay.Request) (any, error) {
			var v int
			err := r.Decode(&v)
			return v, err
		})
		s.Handle("apply", func(_ context.Context, r *relay.Request) (any, error) {
			var v int
			if err := r.Decode(&v); err != nil {
				return nil, err
			}
			mu.Lock()
			applied[v]++
			mu.Unlock()
			return nil, nil
		})
		eps = append(eps, ep)
	}
	clients := []*relay.Node{
		newNode(t, mm, "c0", rp, relay.WithAcks(true), relay.WithRetry(50*time.Millisecond, 2, 8)),
		newNode(t, mm, "c1", rp, relay.WithAcks(true), relay.WithRetry(50*time.Millisecond, 2, 8)),
	}
	ctx := ctxTimeout(t, 60*time.Second)
	// Servers announce themselves to the proxies (HELLO) within a second.
	waitFor(t, 5*time.Second, func() error {
		for _, h := range []string{"s0", "s1", "s2"} {
			if err := clients[0].Call(ctx, directed(h), "get", nil, nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err := clients[0].Call(ctx, directed("s1"), "add", 5, nil); err != nil {
		t.Fatal(err)
	}
	if eps[1].State().Int != 5 || eps[0].State().Int != 0 || eps[2].State().Int != 0 {
		t.Fatalf("directed add through proxies changed %d/%d/%d", eps[0].State().Int, eps[1].State().Int, eps[2].State().Int)
	}
	// Bare calls go round-robin over the servers (call i adds 100+i).
	for i := 0; i < 14; i++ {
		if err := clients[1].Call(ctx, compute, "add", 100+i, nil); err != nil {
			t.Fatal(err)
		}
	}
	checkRoundRobin(t, eps, []int{0, 1, 0}, 14, func(a int64) (int, bool) { return int(a - 100), a >= 100 })
	var re *relay.RemoteError
	if err := clients[0].Call(ctx, directed("s0"), "subtract", 1000, nil); !errors.As(err, &re) || re.Code != "NegativeError" {
		t.Errorf("remote error through proxies = %v", err)
	}

	// Load from both clients; a proxy crashes halfway (still registered:
	// what was sent through it is resent through the next).
	const perClient = 600
	var wrong, failed atomic.Int64
	var wg sync.WaitGroup
	for ci, c := range clients {
		wg.Add(1)
		go func(ci int, c *relay.Node) {
			defer wg.Done()
			for i := 0; i < perClient; i++ {
				v := ci*1_000_000 + i
				if err := c.Cast(ctx, compute, "apply", v); err != nil {
					failed.Add(1)
				}
				var got int
				if err := c.Call(ctx, compute, "echo", v, &got); err != nil {
					failed.Add(1)
				} else if got != v {
					wrong.Add(1)
				}
				if ci == 0 && i == perClient/2 {
					proxies[0].Crash()
				}
			}
		}(ci, c)
	}
	wg.Wait()
	waitFor(t, 10*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		for ci := range clients {
			for i := 0; i < perClient; i++ {
				if n := applied[ci*1_000_000+i]; n != 1 {
					return fmt.Errorf("cast %d/%d applied %d times", ci, i, n)
				}
			}
		}
		return nil
	})
	if wrong.Load()+failed.Load() > 0 {
		t.Errorf("calls: %d wrong, %d failed", wrong.Load(), failed.Load())
	}
	if r := clients[0].Stats().Resends + clients[1].Stats().Resends; r == 0 {
		t.Error("no message was resent: the crashed proxy took nothing after the crash?")
	}
	t.Logf("2 clients x %d calls and casts through 3 router proxies, one crashed halfway: 0 lost, %d wrong, %d failed; casts applied once each",
		perClient, wrong.Load(), failed.Load())
}

// hiddenProxy starts a router proxy registered in mm with a backend no
// server can reach (it lives in a registry of its own): it has no route to
// any server, as a proxy whose servers' connections are gone.
func hiddenProxy(t *testing.T, mm string) *proxy.Router {
	t.Helper()
	p := startRouterProxy(t, newMatchmaker(t))
	front, _, _ := strings.Cut(p.Endpoints(), "|")
	registerIn(t, mm, matchmaker.Key{Exchange: "$relay", Topic: "routers"}, front+"|tcp://127.0.0.1:9")
	return p
}

// registerIn registers member under key in the matchmaker at url, for a
// minute.
func registerIn(t *testing.T, url string, key matchmaker.Key, member string) {
	t.Helper()
	m, err := matchmaker.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if err := m.Register(ctxTimeout(t, 5*time.Second), key, member, time.Minute); err != nil {
		t.Fatal(err)
	}
}

// A router proxy with no connection to the server a request names answers
// NoRoute: without acks the call fails with ErrNoServers at once; with
// acks the message is resent through the next proxy and nothing is lost.
func TestRouterProxyNoRoute(t *testing.T) {
	mm := newMatchmaker(t)
	startRouterProxy(t, mm)
	hidden := hiddenProxy(t, mm)
	rp := relay.WithRouterProxy(true)
	server := newNode(t, mm, "s0", rp, relay.WithAcks(true))
	var mu sync.Mutex
	applied := map[int]int{}
	srv, err := server.Serve(compute)
	if err != nil {
		t.Fatal(err)
	}
	srv.Handle("apply", func(_ context.Context, r *relay.Request) (any, error) {
		var v int
		err := r.Decode(&v)
		mu.Lock()
		applied[v]++
		mu.Unlock()
		return v, err
	})
	acked := newNode(t, mm, "acked", rp, relay.WithAcks(true), relay.WithRetry(20*time.Millisecond, 2, 6))
	plain := newNode(t, mm, "plain", rp)
	ctx := ctxTimeout(t, 30*time.Second)
	waitFor(t, 10*time.Second, func() error { // the server's HELLO reached the reachable proxy
		return acked.Call(ctxTimeout(t, time.Second), compute, "apply", -1, nil)
	})

	// Without acks, the calls sent through the hidden proxy (every other
	// one) fail fast with ErrNoServers; the others succeed.
	var ok, noRoute int
	for i := 0; i < 6; i++ {
		start := time.Now()
		err := plain.Call(ctxTimeout(t, 5*time.Second), directed("s0"), "apply", 1000+i, nil)
		switch {
		case err == nil:
			ok++
		case errors.Is(err, relay.ErrNoServers) && strings.Contains(err.Error(), "no connection to server s0"):
			noRoute++
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("NoRoute answer after %v", d)
			}
		default:
			t.Errorf("call through proxies, one without a route = %v, want nil or ErrNoServers (NoRoute)", err)
		}
	}
	if ok == 0 || noRoute == 0 {
		t.Errorf("of 6 calls over 2 proxies, %d succeeded and %d got NoRoute; want some of each", ok, noRoute)
	}

	// With acks, every call and cast gets through.
	const n = 40
	for i := 0; i < n; i++ {
		if err := acked.Cast(ctx, directed("s0"), "apply", i); err != nil {
			t.Fatal(err)
		}
		var got int
		if err := acked.Call(ctx, directed("s0"), "apply", n+i, &got); err != nil || got != n+i {
			t.Fatalf("call %d with acks = %d, %v", i, got, err)
		}
	}
	waitFor(t, 10*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		for i := 0; i < 2*n; i++ {
			if applied[i] != 1 {
				return fmt.Errorf("message %d applied %d times, want once", i, applied[i])
			}
		}
		return nil
	})
	if _, refused, _ := hidden.Counts(); refused < uint64(noRoute) || refused == uint64(noRoute) {
		t.Errorf("hidden proxy refused %d requests, want more than the %d plain calls it refused", refused, noRoute)
	}
	if r := acked.Stats().Resends; r == 0 {
		t.Error("no resend: nothing went through the proxy without a route?")
	}
}

// A router proxy forgets a server it has not heard (HELLO) from for 3
// seconds: requests for it are then refused with NoRoute, not forwarded
// into the void.
func TestRouterProxyHelloExpiry(t *testing.T) {
	mm := newMatchmaker(t)
	router := startRouterProxy(t, mm)
	rp := relay.WithRouterProxy(true)
	server := newNode(t, mm, "s0", rp)
	srv, err := server.Serve(compute)
	if err != nil {
		t.Fatal(err)
	}
	(&demo.Endpoint{Host: "s0"}).Register(srv)
	client := newNode(t, mm, "client", rp)
	waitFor(t, 10*time.Second, func() error {
		return client.Call(ctxTimeout(t, time.Second), directed("s0"), "get", nil, nil)
	})
	if err := server.Close(); err != nil {
		t.Fatal(err)
	}
	// The server is still registered for the client (as after a crash);
	// only the proxy can tell.
	registerIn(t, mm, matchmaker.Key{Topic: compute.Topic, Server: "s0"}, "@s0")
	closed := time.Now()
	waitFor(t, 15*time.Second, func() error {
		err := client.Call(ctxTimeout(t, 500*time.Millisecond), directed("s0"), "get", nil, nil)
		if errors.Is(err, relay.ErrNoServers) {
			return nil
		}
		return fmt.Errorf("call to a server gone %v ago = %v, want ErrNoServers (NoRoute)", time.Since(closed), err)
	})
	routed, refused, _ := router.Counts()
	if routed == 0 || refused == 0 {
		t.Errorf("proxy counts: routed %d, refused %d; want both > 0", routed, refused)
	}
}
