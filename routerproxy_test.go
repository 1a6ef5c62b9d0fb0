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
)

func startRouterProxy(t *testing.T, mm string) *relay.RouterProxy {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := relay.StartRouterProxy(ctx, relay.ProxyOptions{Matchmaker: mm})
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
	var proxies []*relay.RouterProxy
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
	for i := 0; i < 14; i++ {
		if err := clients[1].Call(ctx, compute, "add", 1, nil); err != nil {
			t.Fatal(err)
		}
	}
	for i, ep := range eps {
		if len(ep.Adds()) == 0 && i != 1 {
			t.Errorf("server s%d got none of 14 bare calls", i)
		}
	}
	var re *relay.RemoteError
	if err := clients[0].Call(ctx, directed("s0"), "subtract", 1000, nil); !errors.As(err, &re) || re.Code != "NegativeError" {
		t.Errorf("remote error through proxies = %v", err)
	}

	// Load from both clients; a proxy closes halfway.
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
					if err := proxies[0].Close(); err != nil {
						t.Error(err)
					}
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
	t.Logf("2 clients x %d calls and casts through 3 router proxies, one closed halfway: 0 lost, %d wrong, %d failed; casts applied once each",
		perClient, wrong.Load(), failed.Load())
}
