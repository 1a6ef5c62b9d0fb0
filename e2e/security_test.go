package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relay-dev/relay"
	"github.com/relay-dev/relay/internal/demo"
	"github.com/relay-dev/relay/internal/testredis"
)

// Addresses of the secured cluster's proxies and router-proxy server,
// besides hosts (the three servers).
const (
	publisherAddr = "127.0.0.5"
	routerAddr    = "127.0.0.6"
	routedAddr    = "127.0.0.7"
)

// A secured cluster of processes on distinct loopback addresses, with
// CURVE on every socket and a Redis with a password: calls, casts and
// fanout to three `node serve` processes through a central publisher
// proxy, a notification to a `node listen` process, and calls through a
// router proxy to a `node serve --router-proxy`. A client with a key that
// is not on the cluster's allow-list, and one without keys, are refused
// with ErrUnauthorized; no process prints the Redis password.
func TestCurveCluster(t *testing.T) {
	checkLoopback(t, publisherAddr, routerAddr, routedAddr)
	const password = "e2e-redis-secret"
	rs := testredis.Start(t, testredis.WithPassword(password))
	mm := rs.URL()
	keys := t.TempDir()
	names := []string{"publisher", "router", "routed", "listener", "tester", "outsider", "s0", "s1", "s2"}
	for _, n := range names {
		if out, err := exec.Command(nodeBin, "keygen", "--dir", keys, n).CombinedOutput(); err != nil {
			t.Fatalf("node keygen %s: %v\n%s", n, err, out)
		}
	}
	// The cluster's allow-list: every public key but the outsider's.
	allow := t.TempDir()
	for _, n := range names {
		if n == "outsider" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(keys, n+".pub"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(allow, n+".pub"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	secure := func(name string) []string {
		return []string{"--curve-key", filepath.Join(keys, name+".key"), "--curve-allow", allow}
	}
	var procs []*proc
	procs = append(procs,
		launch(t, "publisher", append([]string{"proxy", "--publisher", "--ack", "--matchmaker", mm, "--bind", publisherAddr, "--ttl", ttl.String()}, secure("publisher")...)...),
		launch(t, "router", append([]string{"proxy", "--router", "--matchmaker", mm, "--bind", routerAddr, "--ttl", ttl.String()}, secure("router")...)...))
	tester := func(name string, opts ...relay.Option) *relay.Node {
		var n *relay.Node
		waitFor(t, 15*time.Second, func() error { // until the proxies have registered
			var err error
			n, err = relay.Start(context.Background(), append([]relay.Option{relay.WithMatchmaker(mm), relay.WithHost(name),
				relay.WithCurve(filepath.Join(keys, name+".key"), allow)}, opts...)...)
			return err
		})
		t.Cleanup(func() { n.Close() })
		return n
	}
	client := tester("tester", relay.WithPubSub(true))
	for i, h := range hosts {
		procs = append(procs, launchServe(t, mm, h, h, append([]string{"--pubsub"}, secure(fmt.Sprintf("s%d", i))...)...))
	}
	procs = append(procs, launch(t, "routed", append([]string{"serve", "--matchmaker", mm, "--host", "r1", "--bind", routedAddr,
		"--topic", topic, "--ttl", ttl.String(), "--router-proxy"}, secure("routed")...)...))
	listener := launch(t, "listener", append([]string{"listen", "--matchmaker", mm, "--host", "listener", "--bind", hosts[1],
		"--topic", "billing", "--count", "1", "--pubsub", "--ttl", ttl.String()}, secure("listener")...)...)
	procs = append(procs, listener)

	// Calls: each server, directed.
	state := func(h string) demo.State {
		t.Helper()
		var st demo.State
		waitFor(t, 15*time.Second, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			err := client.Call(ctx, target(h), "get", nil, &st)
			if err == nil && st.Host != h {
				err = fmt.Errorf("directed get on %s answered by %q", h, st.Host)
			}
			return err
		})
		return st
	}
	before := map[string]int64{}
	for _, h := range hosts {
		before[h] = state(h).Int
	}
	// A cast, directed.
	if err := client.Cast(context.Background(), target(hosts[0]), "add", 1000); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() error {
		if got := state(hosts[0]).Int; got != before[hosts[0]]+1000 {
			return fmt.Errorf("%s: counter %d after a cast of 1000 to %d", hosts[0], got, before[hosts[0]])
		}
		return nil
	})
	// Fanout through the publisher proxy: sent until every server has
	// subscribed and applied one.
	fan := relay.Target{Topic: topic, Fanout: true}
	waitFor(t, 20*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := client.Cast(ctx, fan, "add", 1); err != nil {
			return err
		}
		for i, h := range hosts {
			base := before[h]
			if i == 0 {
				base += 1000
			}
			if got := state(h).Int; got <= base {
				return fmt.Errorf("%s has not applied a fanout yet", h)
			}
		}
		return nil
	})
	// A notification to the listener process.
	waitFor(t, 20*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if strings.Contains(listener.out.String(), `"event_type":"invoice.paid"`) {
			return nil
		}
		if err := client.Notify(ctx, relay.Notification{Topic: "billing", EventType: "invoice.paid", Payload: map[string]int{"id": 7}}); err != nil {
			return err
		}
		return errors.New("the listener has printed nothing yet")
	})
	// Calls through the router proxy.
	routed := tester("tester", relay.WithRouterProxy(true))
	waitFor(t, 15*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		var st demo.State
		err := routed.Call(ctx, target("r1"), "get", nil, &st)
		if err == nil && st.Host != "r1" {
			err = fmt.Errorf("answered by %q", st.Host)
		}
		return err
	})

	// Refusals: a key not on the cluster's allow-list, and no keys.
	outsider := tester("outsider")
	plain, closePlain := startNode(t, mm)
	defer closePlain()
	for name, n := range map[string]*relay.Node{"outsider": outsider, "plaintext": plain} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		start := time.Now()
		err := n.Call(ctx, target(hosts[0]), "get", nil, nil)
		cancel()
		if !errors.Is(err, relay.ErrUnauthorized) || time.Since(start) > 5*time.Second {
			t.Errorf("%s client: %v after %v; want ErrUnauthorized at once", name, err, time.Since(start))
		}
	}
	waitFor(t, 10*time.Second, func() error {
		for _, p := range procs {
			if strings.Contains(p.out.String(), "client refused: its CURVE key is not on the allow-list") {
				return nil
			}
		}
		return errors.New("no server logged the outsider's refusal")
	})
	for _, p := range procs {
		if strings.Contains(p.out.String(), password) {
			t.Errorf("%s printed the Redis password:\n%s", p.host, p.out.String())
		}
	}
}
