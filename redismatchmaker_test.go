package relay_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/relay-dev/relay"
	"github.com/relay-dev/relay/internal/demo"
	"github.com/relay-dev/relay/internal/testredis"
	"github.com/relay-dev/relay/matchmaker"
)

// Nodes that share a real redis-server find each other; a stopped server
// unregisters at once, so calls move to the others.
func TestRedisMatchmaker(t *testing.T) {
	rs := testredis.Start(t)
	mm := rs.URL()
	eps := map[string]*demo.Endpoint{}
	servers := map[string]*relay.Server{}
	for _, h := range []string{"r0", "r1"} {
		n := newNode(t, mm, h)
		s, err := n.Serve(relay.Target{Exchange: t.Name(), Topic: "compute"})
		if err != nil {
			t.Fatal(err)
		}
		eps[h] = &demo.Endpoint{Host: h}
		eps[h].Register(s)
		servers[h] = s
	}
	client := newNode(t, mm, "client")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	target := relay.Target{Exchange: t.Name(), Topic: "compute"}
	for i := 0; i < 4; i++ {
		if err := client.Call(ctx, target, "add", 1, nil); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if eps["r0"].State().Int != 2 || eps["r1"].State().Int != 2 {
		t.Fatalf("round-robin over Redis: r0=%d r1=%d, want 2 and 2", eps["r0"].State().Int, eps["r1"].State().Int)
	}
	directed := target
	directed.Server = "r1"
	if err := client.Call(ctx, directed, "add", 10, nil); err != nil || eps["r1"].State().Int != 12 {
		t.Fatalf("directed call: %v, r1=%d", err, eps["r1"].State().Int)
	}
	if err := servers["r0"].Stop(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() error {
		before := eps["r0"].State().Int
		for i := 0; i < 4; i++ {
			if err := client.Call(ctx, target, "add", 1, nil); err != nil {
				return err
			}
		}
		if eps["r0"].State().Int != before {
			return fmt.Errorf("stopped server r0 still gets calls")
		}
		return nil
	})
	other := target
	other.Topic = "nobody"
	if err := client.Call(ctx, other, "add", 1, nil); !errors.Is(err, relay.ErrNoServers) {
		t.Errorf("call to an unserved topic over Redis = %v, want ErrNoServers", err)
	}
}

// Redis down under load: calls to targets the client knows keep succeeding
// from its cached routes; when Redis is back (empty), the servers' renewals
// register them again within one heartbeat.
func TestRedisOutage(t *testing.T) {
	rs := testredis.Start(t)
	mm := rs.URL()
	ttl := relay.WithRegistrationTTL(900 * time.Millisecond) // renewals every 300ms
	target := relay.Target{Exchange: t.Name(), Topic: "compute"}
	for _, h := range []string{"r0", "r1"} {
		n := newNode(t, mm, h, ttl)
		s, err := n.Serve(target)
		if err != nil {
			t.Fatal(err)
		}
		(&demo.Endpoint{Host: h}).Register(s)
	}
	client := newNode(t, mm, "client", ttl)
	call := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return client.Call(ctx, target, "add", 1, nil)
	}
	for i := 0; i < 4; i++ {
		if err := call(); err != nil {
			t.Fatalf("call before the outage: %v", err)
		}
	}
	rs.Stop()
	end := time.Now().Add(2 * time.Second)
	calls := 0
	for time.Now().Before(end) {
		if err := call(); err != nil {
			t.Fatalf("call %d while Redis is down: %v", calls, err)
		}
		calls++
	}
	rs.Restart()
	// Nothing persisted: the registrations come back only by renewal.
	waitFor(t, 5*time.Second, func() error {
		other := relay.Target{Exchange: t.Name(), Topic: "compute", Server: "r1"}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return client.Call(ctx, other, "add", 1, nil)
	})
	t.Logf("%d calls succeeded while Redis was down", calls)
}

// Sentinel: the master is killed, Sentinel promotes the replica, and the
// nodes' registrations and lookups continue through the new master.
func TestRedisSentinelNodes(t *testing.T) {
	master := testredis.Start(t)
	sentinel := testredis.StartSentinel(t, master)
	mm := sentinel.URL()
	ttl := relay.WithRegistrationTTL(900 * time.Millisecond)
	target := relay.Target{Exchange: t.Name(), Topic: "compute"}
	srv := newNode(t, mm, "r0", ttl)
	s, err := srv.Serve(target)
	if err != nil {
		t.Fatal(err)
	}
	(&demo.Endpoint{Host: "r0"}).Register(s)
	client := newNode(t, mm, "client", ttl)
	call := func(tg relay.Target) error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return client.Call(ctx, tg, "add", 1, nil)
	}
	if err := call(target); err != nil {
		t.Fatalf("call through sentinel: %v", err)
	}
	master.Stop()
	waitFor(t, 20*time.Second, func() error {
		addr, err := sentinel.MasterAddr()
		if err != nil {
			return err
		}
		if addr != sentinel.Replica().Addr() {
			return fmt.Errorf("sentinel still names %s as master", addr)
		}
		return nil
	})
	// A server that registers after the failover is found through the new
	// master, and the first one's renewals went there too.
	late := newNode(t, mm, "r1", ttl)
	s1, err := late.Serve(target)
	if err != nil {
		t.Fatalf("serve after failover: %v", err)
	}
	(&demo.Endpoint{Host: "r1"}).Register(s1)
	for _, h := range []string{"r0", "r1"} {
		directed := target
		directed.Server = h
		waitFor(t, 10*time.Second, func() error { return call(directed) })
	}
}

// Redis restarted with an empty dataset while servers run with the default
// 30 s registration TTL: a client that knew the servers goes on calling
// them, and a new client finds them within a second (they register again
// as soon as they notice the loss, not at their next renewal, up to 10 s
// later).
func TestRedisEmptyRestartRecovery(t *testing.T) {
	rs := testredis.Start(t)
	mm := rs.URL()
	target := relay.Target{Exchange: t.Name(), Topic: "compute"}
	for _, h := range []string{"r0", "r1"} {
		n := newNode(t, mm, h)
		s, err := n.Serve(target)
		if err != nil {
			t.Fatal(err)
		}
		(&demo.Endpoint{Host: h}).Register(s)
	}
	client := newNode(t, mm, "client")
	call := func(n *relay.Node) error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return n.Call(ctx, target, "add", 1, nil)
	}
	if err := call(client); err != nil {
		t.Fatal(err)
	}
	rs.Restart() // empty
	restarted := time.Now()
	// The client that knew them keeps calling (what it knew stands while
	// the servers register again).
	for i := 0; i < 20; i++ {
		if err := call(client); err != nil {
			t.Fatalf("call %d after Redis restarted empty: %v", i, err)
		}
	}
	// A new client, with nothing cached, finds them within a second.
	fresh := newNode(t, mm, "fresh", relay.WithDiscoveryWait(100*time.Millisecond))
	waitFor(t, 10*time.Second, func() error { return call(fresh) })
	took := time.Since(restarted)
	t.Logf("servers discoverable again %v after Redis restarted empty", took.Round(time.Millisecond))
	if took > time.Second {
		t.Errorf("servers were undiscoverable for %v after Redis restarted empty, want at most 1s", took)
	}
}

// A server that starts while Redis is down serves anyway, reports itself
// not ready, and is registered once Redis is back, within a second, by its
// renewal loop: a process started during an outage comes up instead of
// failing.
func TestServeDuringRedisOutage(t *testing.T) {
	rs := testredis.Start(t)
	mm := rs.URL()
	target := relay.Target{Exchange: t.Name(), Topic: "compute"}
	n := newNode(t, mm, "r0")
	rs.Stop()
	s, err := n.Serve(target)
	if err != nil {
		t.Fatalf("Serve during a Redis outage: %v; want it to serve and register later", err)
	}
	(&demo.Endpoint{Host: "r0"}).Register(s)
	if err := n.Ready(); !errors.Is(err, matchmaker.ErrMatchmaker) {
		t.Errorf("Ready during the outage = %v, want an error matching matchmaker.ErrMatchmaker", err)
	}
	// A client with nothing cached learns why it cannot find the server.
	early := newNode(t, mm, "early", relay.WithDiscoveryWait(100*time.Millisecond))
	if err := early.Call(ctxTimeout(t, 2*time.Second), target, "add", 1, nil); !errors.Is(err, relay.ErrMatchmaker) {
		t.Errorf("a call during the outage, nothing cached = %v, want an error matching relay.ErrMatchmaker", err)
	}
	rs.Restart()
	back := time.Now()
	client := newNode(t, mm, "client", relay.WithDiscoveryWait(100*time.Millisecond))
	waitFor(t, 10*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return client.Call(ctx, target, "add", 1, nil)
	})
	took := time.Since(back)
	t.Logf("registered %v after Redis came back", took.Round(time.Millisecond))
	if took > 2*time.Second {
		t.Errorf("the server was registered %v after Redis came back, want within 2s", took)
	}
	waitFor(t, 5*time.Second, n.Ready)
}
