package matchmaker_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relay-dev/relay/internal/testredis"
	"github.com/relay-dev/relay/matchmaker"
)

// openRedis opens a Redis matchmaker on rawURL with the loss check every
// checkEvery (0: the default), closed by t.Cleanup.
func openRedis(t testing.TB, rawURL string, checkEvery time.Duration) *matchmaker.Redis {
	t.Helper()
	opts, err := matchmaker.ParseRedisURL(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	opts.CheckInterval = checkEvery
	m, err := matchmaker.NewRedis(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// waitClosed waits up to d for ch to be closed and says how long it took.
func waitClosed(t testing.TB, ch <-chan struct{}, d time.Duration, what string) time.Duration {
	t.Helper()
	start := time.Now()
	select {
	case <-ch:
		return time.Since(start)
	case <-time.After(d):
		t.Fatalf("%s: not within %v", what, d)
		return 0
	}
}

// replicated waits until srv's replica has every write srv acknowledged.
func replicated(t testing.TB, srv *testredis.Server) {
	t.Helper()
	waitFor(t, 10*time.Second, func() error {
		master, err := srv.Info("master_repl_offset")
		if err != nil {
			return err
		}
		replica, err := srv.Info("slave0") // ip=…,port=…,state=online,offset=N,lag=0
		if err != nil {
			return err
		}
		if !strings.Contains(replica, "offset="+master+",") {
			return fmt.Errorf("replica of %s at %q, primary at offset %s", srv.Addr(), replica, master)
		}
		return nil
	})
}

// A 3-primary cluster with a replica each: registrations and lookups spread
// over the slots, change notices reach every client, and when the primary
// that carries the change channel (and some keys) is killed, its replica
// takes over: registrations and lookups continue, the subscription comes
// back, and Lost tells the clients to re-register.
func TestRedisClusterFailover(t *testing.T) {
	verifyNoLeaks(t)
	cl := testredis.StartCluster(t, 3, 1)
	a := openRedis(t, cl.URL(), 200*time.Millisecond)
	b := openRedis(t, cl.URL(), 200*time.Millisecond)
	ctx := ctxTimeout(t, 60*time.Second)
	if !strings.HasPrefix(a.String(), "redis cluster ") {
		t.Errorf("String() = %q", a.String())
	}

	// Keys spread over every primary, registered in one batch.
	const n = 30
	var entries []matchmaker.Entry
	for i := range n {
		entries = append(entries, matchmaker.Entry{Key: matchmaker.Key{Exchange: "x", Topic: "t" + strconv.Itoa(i)}, Addr: "tcp://h:" + strconv.Itoa(i)})
	}
	owners := map[*testredis.Server]int{}
	for _, e := range entries {
		p, err := cl.PrimaryFor("relay:" + e.Key.String())
		if err != nil {
			t.Fatal(err)
		}
		owners[p]++
	}
	if len(owners) != 3 {
		t.Fatalf("%d keys land on %d primaries, want all 3", n, len(owners))
	}
	changeSeen(t, a, b) // b's subscription is up
	changed := b.Changed()
	if err := a.RegisterMany(ctx, entries, time.Minute); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, changed, 5*time.Second, "Changed at another client after a RegisterMany")
	lookupAll := func(m *matchmaker.Redis) error {
		for _, e := range entries {
			got, err := m.Lookup(ctx, e.Key)
			if err != nil {
				return err
			}
			if !slices.Contains(got, e.Addr) {
				return fmt.Errorf("lookup %s = %v, want %s among them", e.Key, got, e.Addr)
			}
		}
		return nil
	}
	if err := lookupAll(b); err != nil {
		t.Fatal(err)
	}
	regs, err := b.List(ctx)
	regs = slices.DeleteFunc(regs, func(r matchmaker.Registration) bool { return r.Key.Exchange != "x" })
	if err != nil || len(regs) != n {
		t.Fatalf("List = %d registrations, %v; want %d (SCAN on every primary)", len(regs), err, n)
	}
	// The loss check keeps a marker on every primary.
	waitFor(t, 5*time.Second, func() error {
		for p := range owners {
			keys, err := p.Do("KEYS", "relay:marker:*")
			if err != nil {
				return err
			}
			if arr, _ := keys.([]any); len(arr) != 1 {
				return fmt.Errorf("primary %s holds markers %v, want one", p.Addr(), keys)
			}
		}
		return nil
	})

	// A cluster node opened as a single server: the hint says so.
	plain := newTestRedis(t, "redis://"+cl.Nodes()[0].Addr())
	for _, e := range entries {
		if p, _ := cl.PrimaryFor("relay:" + e.Key.String()); p != cl.Nodes()[0] {
			_, err := plain.Lookup(ctx, e.Key)
			if !errors.Is(err, matchmaker.ErrMatchmaker) || !strings.Contains(err.Error(), "use redis+cluster://") {
				t.Errorf("lookup of another node's key through redis:// = %v; want the cluster hint", err)
			}
			break
		}
	}

	// Kill the primary of the change channel.
	victim, err := cl.PrimaryFor(matchmaker.RedisChangesChannel)
	if err != nil {
		t.Fatal(err)
	}
	replicated(t, victim)
	lostA, lostB := a.Lost(), b.Lost()
	start := time.Now()
	victim.Stop()
	var moved matchmaker.Key // a key the victim served
	for _, e := range entries {
		if p, _ := cl.PrimaryFor("relay:" + e.Key.String()); p == victim {
			moved = e.Key
		}
	}
	waitFor(t, 20*time.Second, func() error {
		short, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		return a.Register(short, moved, "tcp://new", time.Minute)
	})
	t.Logf("registrations work again %v after the primary was killed", time.Since(start).Round(time.Millisecond))
	waitFor(t, 10*time.Second, func() error { return lookupAll(b) })
	got, err := b.Lookup(ctx, moved)
	if err != nil || !slices.Contains(got, "tcp://new") {
		t.Fatalf("lookup %s after failover = %v, %v; want tcp://new too", moved, got, err)
	}
	waitClosed(t, lostA, 10*time.Second, "Lost after a failover (a)")
	waitClosed(t, lostB, 10*time.Second, "Lost after a failover (b)")
	t.Logf("Lost closed %v after the primary was killed", time.Since(start).Round(time.Millisecond))

	// The subscription is back, on another node: a's changes reach b.
	changeSeen(t, a, b)
}

// Redis Cluster URLs: seeds with default ports, no path.
func TestParseRedisClusterURL(t *testing.T) {
	o, err := matchmaker.ParseRedisURL("redis+cluster://u:pw@h1:7000,h2")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.ClusterAddrs, []string{"h1:7000", "h2:6379"}) || o.Username != "u" || o.Password != "pw" {
		t.Errorf("parsed %#v", o)
	}
	if s := fmt.Sprintf("%v %+v %#v", o, o, o); strings.Contains(s, "pw") {
		t.Errorf("formatting RedisOptions shows the password: %s", s)
	}
	for raw, part := range map[string]string{
		"redis+cluster:///":       "cluster host",
		"redis+cluster://h1,h2/0": "no databases",
		"redis+cluster://h1:x":    "port",
	} {
		if _, err := matchmaker.ParseRedisURL(raw); !errors.Is(err, matchmaker.ErrBadURL) || !strings.Contains(err.Error(), part) {
			t.Errorf("ParseRedisURL(%q) = %v; want ErrBadURL naming %q", raw, err, part)
		}
	}
}

// redis+cluster:// on a server that is not in cluster mode: a clear error.
func TestRedisClusterMismatch(t *testing.T) {
	verifyNoLeaks(t)
	srv := testredis.Start(t)
	m := newTestRedis(t, "redis+cluster://"+srv.Addr())
	_, err := m.Lookup(ctxTimeout(t, 5*time.Second), matchmaker.Key{Topic: "t"})
	if !errors.Is(err, matchmaker.ErrMatchmaker) || !strings.Contains(err.Error(), "use redis+cluster:// for a Redis Cluster and redis:// otherwise") {
		t.Errorf("lookup through redis+cluster:// on a plain server = %v; want the cluster hint", err)
	}
}
