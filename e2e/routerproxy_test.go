package e2e_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relay-dev/relay"
	"github.com/relay-dev/relay/internal/demo"
	"github.com/relay-dev/relay/internal/testredis"
	"github.com/relay-dev/relay/matchmaker"
	"github.com/relay-dev/relay/proxy"
)

// 3 router proxy processes, 3 `node serve --router-proxy --acks` processes
// and 2 clients on distinct loopback addresses. kill -9 of one proxy while
// the clients run 20,000 calls and 20,000 casts: every call returns its own
// argument (0 lost, 0 wrong), every cast is applied exactly once (each
// cast's own argument is in exactly one server's log of adds, and nothing
// else is); then the proxy comes back and takes traffic again.
func TestRouterProxyKill9(t *testing.T) {
	checkLoopback(t)
	rs := testredis.Start(t)
	mm := rs.URL()
	addrs := []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}
	proxy := func(i int) *proc {
		return launch(t, fmt.Sprintf("router-%d", i), "proxy", "--router", "--matchmaker", mm,
			"--bind", addrs[i], "--ttl", ttl.String())
	}
	var proxies []*proc
	for i := range addrs {
		proxies = append(proxies, proxy(i))
	}
	waitRouters(t, mm, len(addrs)) // servers in router-proxy mode need them at start
	hosts := []string{"r0", "r1", "r2"}
	var clients []*relay.Node
	newRouted := func(host string) *relay.Node {
		var n *relay.Node
		waitFor(t, 10*time.Second, func() error { // until a proxy has registered
			var err error
			n, err = relay.Start(context.Background(), relay.WithMatchmaker(mm), relay.WithHost(host),
				relay.WithRouterProxy(true), relay.WithAcks(true), relay.WithRetry(50*time.Millisecond, 2, 8))
			return err
		})
		t.Cleanup(func() { n.Close() })
		return n
	}
	for i, h := range hosts {
		launch(t, h, "serve", "--matchmaker", mm, "--host", h, "--bind", addrs[i], "--topic", topic,
			"--ttl", ttl.String(), "--router-proxy", "--acks")
	}
	clients = append(clients, newRouted("client-a"), newRouted("client-b"))
	get := func(c *relay.Node, h string) (demo.State, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		var st demo.State
		err := c.Call(ctx, relay.Target{Topic: topic, Server: h}, "get", nil, &st)
		return st, err
	}
	waitFor(t, 15*time.Second, func() error {
		for _, h := range hosts {
			if _, err := get(clients[0], h); err != nil {
				return fmt.Errorf("server %s through the proxies: %w", h, err)
			}
		}
		return nil
	})

	const total, workers = 20_000, 8
	per := total / (len(clients) * workers)
	var done, lost, wrong atomic.Int64
	var castErrs atomic.Int64
	errSample := make(chan error, 1)
	var wg sync.WaitGroup
	start := time.Now()
	for ci, c := range clients {
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(c *relay.Node, base int) {
				defer wg.Done()
				for i := 0; i < per; i++ {
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					if err := c.Cast(ctx, relay.Target{Topic: topic}, "add", int64(base+i)); err != nil {
						castErrs.Add(1)
					}
					var got int64
					v := int64(base + i)
					err := c.Call(ctx, relay.Target{Topic: topic}, "echo", v, &got)
					cancel()
					switch {
					case err != nil:
						lost.Add(1)
						select {
						case errSample <- err:
						default:
						}
					case got != v:
						wrong.Add(1)
					}
					done.Add(1)
				}
			}(c, (ci*workers+w)*1_000_000)
		}
	}
	waitFor(t, 60*time.Second, func() error {
		if done.Load() < total/(2*2) {
			return fmt.Errorf("%d calls done", done.Load())
		}
		return nil
	})
	proxies[0].kill9()
	killedAt := done.Load()
	wg.Wait()
	elapsed := time.Since(start)

	// Per cast: its argument applied once, on one server.
	applied := map[int64]int{}
	waitFor(t, 20*time.Second, func() error {
		clear(applied)
		n := 0
		for _, h := range hosts {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			var adds []int64
			err := clients[1].Call(ctx, relay.Target{Topic: topic, Server: h}, "adds", nil, &adds)
			cancel()
			if err != nil {
				return err
			}
			for _, a := range adds {
				applied[a]++
			}
			n += len(adds)
		}
		if n < total {
			return fmt.Errorf("servers applied %d casts, want %d", n, total)
		}
		return nil
	})
	var missing, twice, unknown int
	for ci := range clients {
		for w := 0; w < workers; w++ {
			base := (ci*workers + w) * 1_000_000
			for i := 0; i < per; i++ {
				switch applied[int64(base+i)] {
				case 0:
					missing++
				case 1:
				default:
					twice++
				}
				delete(applied, int64(base+i))
			}
		}
	}
	unknown = len(applied)
	t.Logf("%d calls and %d casts from 2 clients through 3 router proxies in %v; proxy killed (-9) after %d calls: calls lost %d, wrong %d; casts missing %d, applied twice %d, unknown %d (cast errors %d)",
		total, total, elapsed.Round(time.Millisecond), killedAt, lost.Load(), wrong.Load(), missing, twice, unknown, castErrs.Load())
	if missing+twice+unknown > 0 {
		t.Errorf("casts: %d never applied, %d applied more than once, %d applied that were never cast; want 0", missing, twice, unknown)
	}
	if lost.Load()+wrong.Load()+castErrs.Load() > 0 {
		select {
		case err := <-errSample:
			t.Errorf("a lost call: %v", err)
		default:
		}
		t.Fatalf("lost %d, wrong %d, cast errors %d; want 0", lost.Load(), wrong.Load(), castErrs.Load())
	}

	// The killed proxy restarts and takes traffic again: with the other two
	// killed, calls go through it alone.
	proxies[0] = proxy(0)
	proxies[1].kill9()
	proxies[2].kill9()
	waitFor(t, 15*time.Second, func() error {
		for i := 0; i < 9; i++ {
			if _, err := get(clients[0], hosts[i%3]); err != nil {
				return err
			}
		}
		return nil
	})
}

// waitRouters waits until n router proxies are registered in mm.
func waitRouters(t *testing.T, mm string, n int) {
	t.Helper()
	waitMembers(t, mm, map[matchmaker.Key]int{proxy.RoutersKey: n})
}
