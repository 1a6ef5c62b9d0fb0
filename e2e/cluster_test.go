package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relay-dev/relay"
	"github.com/relay-dev/relay/internal/demo"
	"github.com/relay-dev/relay/matchmaker"
)

// Three `node serve` processes registered in one Redis; the core scenarios,
// from an in-test node and from `node call` / `node cast` processes.
func TestCluster(t *testing.T) {
	rs, client, _ := startCluster(t)
	for _, c := range []struct {
		name string
		c    caller
		// fair: the client keeps its round-robin position across calls
		// (a process starts at the first server each time).
		fair bool
	}{
		{"node", client, true},
		{"process", procClient{redisURL: rs.URL()}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			runScenarios(t, client, c.c, c.fair)
		})
	}
}

// runScenarios runs the core scenarios with c, reading the servers' state
// with directed gets from the in-test node.
func runScenarios(t *testing.T, node *relay.Node, c caller, fair bool) {
	ctx := func() context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		t.Cleanup(cancel)
		return ctx
	}
	delta := func(before map[string]int64) map[string]int64 {
		d := map[string]int64{}
		for h, n := range counters(t, node) {
			d[h] = n - before[h]
		}
		return d
	}
	sum := func(m map[string]int64) (s int64) {
		for _, n := range m {
			s += n
		}
		return s
	}
	only := func(host string, by int64) map[string]int64 {
		m := map[string]int64{}
		for _, h := range hosts {
			m[h] = 0
		}
		m[host] = by
		return m
	}

	t.Run("directed call", func(t *testing.T) {
		before := counters(t, node)
		if err := c.Call(ctx(), target(hosts[1]), "add", 5, nil); err != nil {
			t.Fatalf("directed add on %s: %v", hosts[1], err)
		}
		if d := delta(before); !maps.Equal(d, only(hosts[1], 5)) {
			t.Fatalf("after a directed add 5 on %s, counters moved by %v", hosts[1], d)
		}
	})

	t.Run("bare calls", func(t *testing.T) {
		before := counters(t, node)
		for i := range 14 {
			if err := c.Call(ctx(), target(""), "add", 1, nil); err != nil {
				t.Fatalf("bare call %d: %v", i, err)
			}
		}
		d := delta(before)
		t.Logf("14 bare calls: %v", d)
		if sum(d) != 14 {
			t.Fatalf("14 bare calls moved the counters by %v (sum %d)", d, sum(d))
		}
		if got := slices.Sorted(maps.Values(d)); fair && !slices.Equal(got, []int64{4, 5, 5}) {
			t.Fatalf("14 bare calls spread %v over the 3 servers, want 5/5/4 in some order", d)
		}
	})

	t.Run("directed cast", func(t *testing.T) {
		before := counters(t, node)
		if err := c.Cast(ctx(), target(hosts[2]), "add", 7); err != nil {
			t.Fatalf("directed cast on %s: %v", hosts[2], err)
		}
		var d map[string]int64
		waitFor(t, 5*time.Second, func() error {
			if d = delta(before); d[hosts[2]] != 7 {
				return fmt.Errorf("cast not arrived: counters moved by %v", d)
			}
			return nil
		})
		if !maps.Equal(d, only(hosts[2], 7)) {
			t.Fatalf("after a directed cast add 7 on %s, counters moved by %v", hosts[2], d)
		}
	})

	t.Run("bare casts", func(t *testing.T) {
		before := counters(t, node)
		var failed []error
		for range 20 {
			if err := c.Cast(ctx(), target(""), "add", 1); err != nil {
				failed = append(failed, err)
			}
		}
		if len(failed) > 0 {
			t.Errorf("%d of 20 bare casts failed; the first: %v", len(failed), failed[0])
		}
		// Every cast reported sent must arrive, and only once.
		want := int64(20 - len(failed))
		var d map[string]int64
		waitFor(t, 5*time.Second, func() error {
			if d = delta(before); sum(d) != want {
				return fmt.Errorf("%d bare casts sent moved the counters by %v (sum %d)", want, d, sum(d))
			}
			return nil
		})
		t.Logf("%d bare casts sent: %v", want, d)
	})

	t.Run("remote error", func(t *testing.T) {
		st, err := get(node, hosts[0])
		if err != nil {
			t.Fatal(err)
		}
		err = c.Call(ctx(), target(hosts[0]), "subtract", st.Int+1, nil)
		var re *relay.RemoteError
		if !errors.As(err, &re) || re.Code != "NegativeError" {
			t.Fatalf("subtract %d from %d on %s = %v, want *relay.RemoteError with code NegativeError",
				st.Int+1, st.Int, hosts[0], err)
		}
		if after, err := get(node, hosts[0]); err != nil || after.Int != st.Int {
			t.Fatalf("failed subtract changed %s's counter: %d -> %d (%v)", hosts[0], st.Int, after.Int, err)
		}
	})

	t.Run("unknown method", func(t *testing.T) {
		for _, h := range []string{hosts[2], ""} {
			// Within 0.5s of Serve a server waits for a method to be
			// handled (see relay.Node.Serve), so this may take that long.
			err := c.Call(ctx(), target(h), "frobnicate", 1, nil)
			if !errors.Is(err, relay.ErrNoSuchMethod) {
				t.Errorf("call frobnicate on %q = %v, want ErrNoSuchMethod", target(h), err)
			}
		}
	})
}

// callResult is one call of a load loop.
type callResult struct {
	start time.Time
	took  time.Duration
	err   error
	host  string // who answered, when err is nil
}

// load makes bare or directed get calls, each with deadline perCall, until
// stop is closed; the results come on the returned channel when it ends.
func load(node *relay.Node, targets []relay.Target, perCall time.Duration, stop <-chan struct{}) (<-chan []callResult, *atomic.Int64) {
	out := make(chan []callResult, 1)
	var ok atomic.Int64 // calls that succeeded so far, to wait on
	go func() {
		var res []callResult
		for i := 0; ; i++ {
			select {
			case <-stop:
				out <- res
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), perCall)
			var st demo.State
			start := time.Now()
			err := node.Call(ctx, targets[i%len(targets)], "get", nil, &st)
			res = append(res, callResult{start: start, took: time.Since(start), err: err, host: st.Host})
			cancel()
			if err == nil {
				ok.Add(1)
			}
		}
	}()
	return out, &ok
}

// waitLoad waits until the load has had n more successful calls.
func waitLoad(t *testing.T, ok *atomic.Int64, n int64) {
	t.Helper()
	want := ok.Load() + n
	waitFor(t, 30*time.Second, func() error {
		if got := ok.Load(); got < want {
			return fmt.Errorf("%d successful calls of load, waiting for %d", got, want)
		}
		return nil
	})
}

// tally counts results by outcome, as "ok=12 ErrTimeout=3".
func tally(res []callResult) string {
	n := map[string]int{}
	for _, r := range res {
		n[errKind(r.err)]++
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(n)) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, n[k]))
	}
	return strings.Join(parts, " ")
}

// kill -9 of a server under load: its registration expires within the TTL,
// the client's cached route within a second more; meanwhile every call ends
// by its deadline, in success or a typed error.
func TestKill9(t *testing.T) {
	rs, client, procs := startCluster(t)
	const perCall = time.Second
	victim := hosts[1]

	stop := make(chan struct{})
	results, loaded := load(client, []relay.Target{target("")}, perCall, stop)
	stopped := false
	stopLoad := func() []callResult {
		if stopped {
			return nil
		}
		stopped = true
		close(stop)
		return <-results
	}
	t.Cleanup(func() { stopLoad() })

	// Let the load reach every server before the kill.
	waitLoad(t, loaded, 30)
	killed := time.Now()
	procs[victim].kill9()
	// The promise: within TTL + 1s the registration has expired and the
	// cached route aged out. Waiting out that window is the test (the
	// promise is about time, not an event); then every call of a further
	// stretch of load must succeed.
	gone := killed.Add(ttl + time.Second)
	<-time.After(time.Until(gone))
	waitLoad(t, loaded, 100)
	res := stopLoad()

	// Gone from Redis too, and not by an unregistration: kill -9 leaves
	// only expiry.
	mm, err := matchmaker.Open(rs.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer mm.Close()
	lctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if addrs, err := mm.Lookup(lctx, matchmaker.Key{Topic: topic, Server: victim}); err != nil || len(addrs) > 0 {
		t.Errorf("%v after the kill, Redis still has %s at %v (%v)", time.Since(killed).Round(time.Millisecond), victim, addrs, err)
	}
	if addrs, err := mm.Lookup(lctx, matchmaker.Key{Topic: topic}); err != nil || len(addrs) != 2 {
		t.Errorf("%v after the kill, Redis has %v under the bare topic, want the 2 survivors (%v)", time.Since(killed).Round(time.Millisecond), addrs, err)
	}

	var before, during, after []callResult
	for _, r := range res {
		switch {
		case r.start.Add(r.took).Before(killed):
			// Ended before the kill. (A call in flight at the kill may
			// time out: the server died mid-call.)
			before = append(before, r)
		case r.start.Before(gone):
			during = append(during, r)
		default:
			after = append(after, r)
		}
	}
	t.Logf("calls ended before the kill: %s", tally(before))
	t.Logf("calls in flight at the kill or started in the %v after it: %s", ttl+time.Second, tally(during))
	t.Logf("calls after that: %s", tally(after))
	var longest time.Duration
	for _, r := range res {
		longest = max(longest, r.took)
		if r.took > perCall+200*time.Millisecond {
			t.Errorf("a call took %v, more than its deadline %v + 200ms (err %v)", r.took, perCall, r.err)
		}
		if r.err != nil && errKind(r.err) == "untyped" {
			t.Errorf("a call failed with an untyped error: %v", r.err)
		}
	}
	t.Logf("longest call: %v (deadline %v)", longest.Round(time.Millisecond), perCall)
	for _, r := range before {
		if r.err != nil {
			t.Errorf("call that ended before the kill failed: %v", r.err)
		}
	}
	for _, r := range after {
		if r.err != nil || r.host == victim {
			t.Errorf("call %v after the kill (TTL + 1s passed): host %q, err %v",
				r.start.Sub(killed).Round(time.Millisecond), r.host, r.err)
		}
	}
	if len(after) == 0 {
		t.Errorf("no calls made after TTL + 1s")
	}

	// And now, 20 in a row.
	seen := map[string]int{}
	for i := range 20 {
		st, err := func() (demo.State, error) {
			ctx, cancel := context.WithTimeout(context.Background(), perCall)
			defer cancel()
			var st demo.State
			err := client.Call(ctx, target(""), "get", nil, &st)
			return st, err
		}()
		if err != nil {
			t.Fatalf("bare call %d, %v after the kill: %v", i, time.Since(killed).Round(time.Millisecond), err)
		}
		if st.Host == victim {
			t.Fatalf("bare call %d, %v after the kill, answered by the dead %s", i, time.Since(killed).Round(time.Millisecond), victim)
		}
		seen[st.Host]++
	}
	t.Logf("20 bare calls after the kill: %v", seen)
	if len(seen) != 2 {
		t.Errorf("20 bare calls after the kill reached %v, want both survivors", seen)
	}
}

// Redis stopped for 2s under load, then restarted empty: calls to known
// targets keep succeeding from cached routes, and every server registers
// again within one renewal (TTL/3) plus slack.
func TestRedisOutage(t *testing.T) {
	rs, client, _ := startCluster(t)
	const perCall = 2 * time.Second
	targets := []relay.Target{target("")}
	for _, h := range hosts {
		targets = append(targets, target(h))
	}

	stop := make(chan struct{})
	results, loaded := load(client, targets, perCall, stop)
	stopped := false
	stopLoad := func() []callResult {
		if stopped {
			return nil
		}
		stopped = true
		close(stop)
		return <-results
	}
	t.Cleanup(func() { stopLoad() })

	mm, err := matchmaker.Open(rs.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer mm.Close()

	waitLoad(t, loaded, 30) // load before the outage
	down := time.Now()
	rs.Stop()
	<-time.After(5 * time.Second) // the outage under test lasts 5 s (the number), not synchronisation
	rs.Restart()
	up := time.Now()
	// Nothing persisted: the registrations come back only by renewal.
	var back sync.Map
	waitFor(t, ttl/3+time.Second, func() error {
		var missing []string
		for _, h := range hosts {
			if _, ok := back.Load(h); ok {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			addrs, err := mm.Lookup(ctx, matchmaker.Key{Topic: topic, Server: h})
			cancel()
			if err != nil || len(addrs) == 0 {
				missing = append(missing, fmt.Sprintf("%s (%v)", h, err))
				continue
			}
			back.Store(h, time.Since(up))
		}
		if len(missing) > 0 {
			return fmt.Errorf("not registered again: %s", strings.Join(missing, ", "))
		}
		return nil
	})
	back.Range(func(h, d any) bool {
		t.Logf("%s registered again %v after the restart", h, d.(time.Duration).Round(time.Millisecond))
		return true
	})
	for _, h := range hosts {
		if _, err := get(client, h); err != nil {
			t.Errorf("directed get on %s after the restart: %v", h, err)
		}
	}
	// Further load on the renewed registrations.
	waitLoad(t, loaded, 100)
	res := stopLoad()

	var phases [3][]callResult
	for _, r := range res {
		switch {
		case r.start.Before(down):
			phases[0] = append(phases[0], r)
		case r.start.Before(up):
			phases[1] = append(phases[1], r)
		default:
			phases[2] = append(phases[2], r)
		}
	}
	for i, name := range []string{"before the outage", "while Redis was down", "after the restart"} {
		t.Logf("calls %s: %s", name, tally(phases[i]))
	}
	failed := 0
	for _, r := range res {
		if r.err != nil {
			failed++
			if failed <= 10 {
				t.Errorf("call %v after the outage began: %v", r.start.Sub(down).Round(time.Millisecond), r.err)
			}
		}
	}
	if len(phases[1]) == 0 {
		t.Errorf("no calls made while Redis was down")
	}
}
