package e2e_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/relay-dev/relay/internal/testutil"
	"github.com/relay-dev/relay/matchmaker"
	"github.com/relay-dev/relay/proxy"

	"github.com/relay-dev/relay"
	"github.com/relay-dev/relay/internal/testredis"
)

// Two-level fanout across processes: 2 central proxies (acks on) and 2
// local proxies as `node proxy` processes, 6 subscribers on 2 hosts
// (127.0.0.2, 127.0.0.3). kill -9 of the first central proxy mid-stream:
// every subscriber still gets every message.
func TestPubSubKillCentralProxy(t *testing.T) {
	checkLoopback(t)
	rs := testredis.Start(t)
	mm := rs.URL()
	central := launch(t, "central-1", "proxy", "--publisher", "--ack", "--matchmaker", mm, "--ttl", ttl.String())
	launch(t, "central-2", "proxy", "--publisher", "--ack", "--matchmaker", mm, "--ttl", ttl.String())
	hosts := map[string]string{"h1": "127.0.0.2", "h2": "127.0.0.3"}
	for h, addr := range hosts {
		launch(t, "local-"+h, "proxy", "--publisher", "--local", "--host", h, "--bind", addr, "--matchmaker", mm, "--ttl", ttl.String())
	}
	// Nodes in pub/sub mode need the proxies registered when they start.
	want := map[matchmaker.Key]int{proxy.PublishersKey: 2}
	for h := range hosts {
		want[proxy.LocalPublishersKey(h)] = 1
	}
	waitMembers(t, mm, want)

	var subs []*testutil.FanoutCounter
	for h, addr := range hosts {
		for i := 0; i < 3; i++ {
			n, err := relay.Start(context.Background(), relay.WithMatchmaker(mm), relay.WithHost(h),
				relay.WithBindAddress(addr), relay.WithPubSub(true), relay.WithRegistrationTTL(ttl))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { n.Close() })
			subs = append(subs, testutil.ServeCounter(t, n, "events"))
		}
	}
	pub, err := relay.Start(context.Background(), relay.WithMatchmaker(mm), relay.WithHost("publisher"), relay.WithPubSub(true))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Close() })
	fan := relay.Target{Topic: "events", Fanout: true}

	// Wait until a batch of probes (through both central proxies) reaches
	// every subscriber: the whole tree is subscribed.
	testutil.WaitSubscribed(t, pub, "events", 20*time.Second, subs...)

	const msgs = 300
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := 0; i < msgs; i++ {
		if i == msgs/2 {
			central.kill9()
		}
		if err := pub.Cast(ctx, fan, "event", i); err != nil {
			t.Fatalf("fanout %d: %v", i, err)
		}
	}
	var lost, dup int
	waitFor(t, 15*time.Second, func() error {
		lost, dup = 0, 0
		for _, c := range subs {
			l, d := c.Tally(msgs)
			lost, dup = lost+l, dup+d
		}
		if lost+dup > 0 {
			return fmt.Errorf("lost %d, duplicated %d", lost, dup)
		}
		return nil
	})
	t.Logf("6 subscribers on 2 hosts x %d fanouts, central proxy killed (-9) at message %d: lost %d, handled twice %d",
		msgs, msgs/2, lost, dup)
}
