package matchmaker_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relay-dev/relay/internal/testutil"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/relay-dev/relay/internal/testredis"
	"github.com/relay-dev/relay/matchmaker"
)

// newTestRedis opens a Redis matchmaker on rawURL, closed by t.Cleanup.
func newTestRedis(t testing.TB, rawURL string) *matchmaker.Redis {
	t.Helper()
	opts, err := matchmaker.ParseRedisURL(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	m, err := matchmaker.NewRedis(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// waitFor polls f until it returns nil or d runs out, then fails with f's
// last error.
func waitFor(t testing.TB, d time.Duration, f func() error) {
	t.Helper()
	testutil.WaitFor(t, d, f)
}

// waitSubscribers waits until n clients subscribe to the change channel of
// srv.
func waitSubscribers(t testing.TB, srv *testredis.Server, n int64) {
	t.Helper()
	waitFor(t, 5*time.Second, func() error {
		reply, err := srv.Do("PUBSUB", "NUMSUB", matchmaker.RedisChangesChannel)
		if err != nil {
			return err
		}
		if arr, _ := reply.([]any); len(arr) != 2 || arr[1].(int64) < n {
			return fmt.Errorf("subscribers: %v, want %d", reply, n)
		}
		return nil
	})
}

// verifyNoLeaks checks, after every other cleanup of t (so after the
// matchmakers are closed), that no goroutine is left.
func verifyNoLeaks(t *testing.T) {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t, goRedisLingering...) })
}

// goRedisLingering are go-redis goroutines that outlive a closed client by
// a bounded time: the dial probe of a pool that failed to dial (it sleeps
// 1 s between probes, then sees the pool closed) and a cluster's state
// reload (it sleeps 200 ms after reloading).
var goRedisLingering = []goleak.Option{
	goleak.IgnoreAnyFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).tryDial"),
	goleak.IgnoreAnyFunction("github.com/redis/go-redis/v9.(*clusterStateHolder).LazyReload.func1"),
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestRedisRegisterLookupUnregister(t *testing.T) {
	verifyNoLeaks(t)
	srv := testredis.Start(t)
	a, b := newTestRedis(t, srv.URL()), newTestRedis(t, srv.URL())
	ctx := ctxTimeout(t, 10*time.Second)
	bare := matchmaker.Key{Exchange: "x", Topic: "compute"}
	directed := matchmaker.Key{Exchange: "x", Topic: "compute", Server: "h1"}
	otherExchange := matchmaker.Key{Exchange: "y", Topic: "compute"}

	for _, addr := range []string{"tcp://127.0.0.1:2", "tcp://127.0.0.1:1"} {
		if err := a.Register(ctx, bare, addr, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Register(ctx, bare, "tcp://127.0.0.1:1", time.Minute); err != nil {
		t.Fatal("renewal:", err)
	}
	if err := a.Register(ctx, directed, "tcp://127.0.0.1:1", time.Minute); err != nil {
		t.Fatal(err)
	}
	got, err := b.Lookup(ctx, bare)
	if err != nil || !slices.Equal(got, []string{"tcp://127.0.0.1:1", "tcp://127.0.0.1:2"}) {
		t.Fatalf("bare lookup = %v, %v; want both addresses, sorted", got, err)
	}
	if got, err := b.Lookup(ctx, directed); err != nil || !slices.Equal(got, []string{"tcp://127.0.0.1:1"}) {
		t.Fatalf("directed lookup = %v, %v; want the one directed registration", got, err)
	}
	if got, err := b.Lookup(ctx, otherExchange); err != nil || len(got) != 0 {
		t.Fatalf("lookup in another exchange = %v, %v; want nothing", got, err)
	}
	if got, err := b.Lookup(ctx, matchmaker.Key{Exchange: "x", Topic: "compute", Server: "h2"}); err != nil || len(got) != 0 {
		t.Fatalf("lookup of another server = %v, %v; want nothing", got, err)
	}
	if err := a.Unregister(ctx, bare, "tcp://127.0.0.1:2"); err != nil {
		t.Fatal(err)
	}
	if err := a.Unregister(ctx, bare, "tcp://127.0.0.1:9"); err != nil {
		t.Fatal("unregister of an unknown address:", err)
	}
	if got, err := b.Lookup(ctx, bare); err != nil || !slices.Equal(got, []string{"tcp://127.0.0.1:1"}) {
		t.Fatalf("after unregister: %v, %v", got, err)
	}
	if got, _ := b.Lookup(ctx, directed); !slices.Equal(got, []string{"tcp://127.0.0.1:1"}) {
		t.Fatalf("unregistering the bare key changed the directed one: %v", got)
	}
	if err := a.Register(ctx, bare, "x", 0); err == nil {
		t.Error("register with ttl 0 succeeded")
	}

	a.Close()
	if err := a.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if _, err := a.Lookup(ctx, bare); !errors.Is(err, matchmaker.ErrClosed) {
		t.Errorf("lookup after Close = %v, want ErrClosed", err)
	}
	if err := a.Register(ctx, bare, "y", time.Minute); !errors.Is(err, matchmaker.ErrClosed) {
		t.Errorf("register after Close = %v, want ErrClosed", err)
	}
}

// The sorted set is named relay:<exchange>/<topic>[/<server>], members
// scored by expiry.
func TestRedisLayout(t *testing.T) {
	verifyNoLeaks(t)
	srv := testredis.Start(t)
	m := newTestRedis(t, srv.URL())
	ctx := ctxTimeout(t, 10*time.Second)
	if err := m.Register(ctx, matchmaker.Key{Exchange: "x", Topic: "t", Server: "h"}, "tcp://a", time.Minute); err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), Protocol: 2, DisableIdentity: true})
	defer c.Close()
	zs, err := c.ZRangeWithScores(ctx, "relay:x/t/h", 0, -1).Result()
	if err != nil || len(zs) != 1 || zs[0].Member != "tcp://a" {
		t.Fatalf("relay:x/t/h = %v, %v", zs, err)
	}
	exp := time.UnixMilli(int64(zs[0].Score))
	if d := time.Until(exp); d < 50*time.Second || d > 70*time.Second {
		t.Errorf("member expires in %v, want about a minute", d)
	}
	if ttl, err := c.PTTL(ctx, "relay:x/t/h").Result(); err != nil || ttl < time.Minute || ttl > 2*time.Minute {
		t.Errorf("set TTL = %v, %v; want about 2 minutes", ttl, err)
	}
}

// Liveness is per member: one expired registration leaves the others.
func TestRedisTTLPerMember(t *testing.T) {
	verifyNoLeaks(t)
	srv := testredis.Start(t)
	m := newTestRedis(t, srv.URL())
	ctx := ctxTimeout(t, 10*time.Second)
	k := matchmaker.Key{Exchange: "x", Topic: "t"}
	if err := m.Register(ctx, k, "long", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := m.Register(ctx, k, "short", 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if got, err := m.Lookup(ctx, k); err != nil || !slices.Equal(got, []string{"long", "short"}) {
		t.Fatalf("lookup = %v, %v; want both", got, err)
	}
	changed := m.Changed()
	waitFor(t, 3*time.Second, func() error {
		got, err := m.Lookup(ctx, k)
		if err != nil {
			return err
		}
		if !slices.Equal(got, []string{"long"}) {
			return errors.New("lookup = " + strings.Join(got, ",") + "; want only the live member")
		}
		return nil
	})
	select {
	case <-changed:
	default:
		t.Error("Changed not closed by a lookup that found a member expired")
	}
}

func TestRedisChangedAcrossClients(t *testing.T) {
	verifyNoLeaks(t)
	srv := testredis.Start(t)
	a, b := newTestRedis(t, srv.URL()), newTestRedis(t, srv.URL())
	ctx := ctxTimeout(t, 10*time.Second)
	waitSubscribers(t, srv, 2)
	k := matchmaker.Key{Exchange: "x", Topic: "t"}

	changed := b.Changed()
	if err := a.Register(ctx, k, "tcp://a", time.Minute); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("Changed not closed by a registration through another client")
	}

	changed = b.Changed()
	if err := a.Unregister(ctx, k, "tcp://a"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("Changed not closed by an unregistration through another client")
	}
}

func TestRedisUnreachable(t *testing.T) {
	verifyNoLeaks(t)
	// A port nobody listens on: connection refused.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := l.Addr().String()
	l.Close()

	// A listener that accepts and never answers: only the deadline ends it.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	defer func() {
		silent.Close()
		wg.Wait()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()

	for _, addr := range []string{refused, silent.Addr().String()} {
		m := newTestRedis(t, "redis://"+addr)
		k := matchmaker.Key{Exchange: "x", Topic: "t"}
		const limit = 500 * time.Millisecond
		ctx, cancel := context.WithTimeout(context.Background(), limit)
		start := time.Now()
		_, err := m.Lookup(ctx, k)
		took := time.Since(start)
		cancel()
		if err == nil {
			t.Fatalf("lookup on %s succeeded", addr)
		}
		if !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "lookup x/t") {
			t.Errorf("error %q does not name the address %s and the operation", err, addr)
		}
		if !errors.Is(err, matchmaker.ErrMatchmaker) {
			t.Errorf("error %q does not wrap ErrMatchmaker", err)
		}
		if addr != refused && !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("error %q from a Redis that never answers does not wrap context.DeadlineExceeded", err)
		}
		if took > limit+time.Second {
			t.Errorf("lookup on %s took %v with a %v deadline", addr, took, limit)
		}
		start = time.Now()
		m.Close()
		t.Logf("%s: %v (after %v; Close took %v)", addr, err, took.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	}
}

// Redis stopped: commands fail; restarted on the same port: they work again
// (registrations are the owner's to redo).
func TestRedisOutage(t *testing.T) {
	verifyNoLeaks(t)
	srv := testredis.Start(t)
	m := newTestRedis(t, srv.URL())
	waitSubscribers(t, srv, 1)
	k := matchmaker.Key{Exchange: "x", Topic: "t"}
	ctx := ctxTimeout(t, 30*time.Second)
	if err := m.Register(ctx, k, "tcp://a", time.Minute); err != nil {
		t.Fatal(err)
	}

	changed := m.Changed()
	srv.Stop()
	short, cancel := context.WithTimeout(ctx, time.Second)
	_, err := m.Lookup(short, k)
	cancel()
	if err == nil || !strings.Contains(err.Error(), srv.Addr()) {
		t.Fatalf("lookup while Redis is down = %v; want an error naming %s", err, srv.Addr())
	}
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Error("Changed not closed when the subscription was lost")
	}

	srv.Restart()
	changed = m.Changed()
	waitFor(t, 10*time.Second, func() error {
		_, err := m.Lookup(ctx, k)
		return err
	})
	if err := m.Register(ctx, k, "tcp://a", time.Minute); err != nil {
		t.Fatal(err)
	}
	if got, err := m.Lookup(ctx, k); err != nil || !slices.Equal(got, []string{"tcp://a"}) {
		t.Fatalf("lookup after restart and re-register = %v, %v", got, err)
	}
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Error("Changed not closed after Redis came back")
	}
	// The subscription is back: another client's registration is seen.
	waitSubscribers(t, srv, 1)
	other := newTestRedis(t, srv.URL())
	changed = m.Changed()
	if err := other.Register(ctx, k, "tcp://b", time.Minute); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Error("Changed not closed by another client's registration after the restart")
	}
}

func TestParseRedisURL(t *testing.T) {
	good := map[string]matchmaker.RedisOptions{
		"redis://127.0.0.1:6380":          {Addr: "127.0.0.1:6380"},
		"redis://localhost":               {Addr: "localhost:6379"},
		"redis://:secret@h:1/3":           {Addr: "h:1", Password: "secret", DB: 3},
		"redis://u:secret@h:1/":           {Addr: "h:1", Username: "u", Password: "secret"},
		"redis://[::1]:7000":              {Addr: "[::1]:7000"},
		"redis+sentinel://h1:26379,h2/mm": {SentinelAddrs: []string{"h1:26379", "h2:26379"}, MasterName: "mm"},
		"redis+sentinel://:pw@h1/mm/2":    {SentinelAddrs: []string{"h1:26379"}, MasterName: "mm", Password: "pw", DB: 2},
	}
	for raw, want := range good {
		got, err := matchmaker.ParseRedisURL(raw)
		if err != nil {
			t.Errorf("ParseRedisURL(%q): %v", raw, err)
			continue
		}
		if got.Addr != want.Addr || !slices.Equal(got.SentinelAddrs, want.SentinelAddrs) ||
			got.MasterName != want.MasterName || got.Username != want.Username ||
			got.Password != want.Password || got.DB != want.DB {
			t.Errorf("ParseRedisURL(%q) = %+v, want %+v", raw, got, want)
		}
	}
	bad := map[string]string{ // URL -> the part the error must name
		"redis://":                  "host",
		"redis://h:notaport":        "port",
		"redis://h:1/x":             "database",
		"redis://h:1/1/2":           "path",
		"redis://:secret@h:1/x":     "database",
		"redis+sentinel://h1:26379": "master name",
		"redis+sentinel:///mm":      "host",
		"redis+sentinel://h1:0/mm":  "port",
		"redis+sentinel://h1/mm/x":  "database",
		"http://h:1":                "scheme",
		"redis://h:1?db=2":          "query",
	}
	for raw, part := range bad {
		_, err := matchmaker.ParseRedisURL(raw)
		if !errors.Is(err, matchmaker.ErrBadURL) || !strings.Contains(err.Error(), part) {
			t.Errorf("ParseRedisURL(%q) = %v; want ErrBadURL naming %q", raw, err, part)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("ParseRedisURL(%q) error shows the password: %v", raw, err)
		}
	}
}

// Through Sentinel: the matchmaker follows the master across a failover
// (registrations are the owner's to redo on the new master if they were not
// replicated).
func TestRedisSentinelFailover(t *testing.T) {
	verifyNoLeaks(t)
	master := testredis.Start(t)
	sentinel := testredis.StartSentinel(t, master)
	m := newTestRedis(t, sentinel.URL())
	ctx := ctxTimeout(t, 60*time.Second)
	k := matchmaker.Key{Exchange: "x", Topic: "t"}
	if err := m.Register(ctx, k, "tcp://a", time.Minute); err != nil {
		t.Fatal(err)
	}
	if got, err := m.Lookup(ctx, k); err != nil || !slices.Equal(got, []string{"tcp://a"}) {
		t.Fatalf("lookup through sentinel = %v, %v", got, err)
	}

	master.Stop()
	waitFor(t, 30*time.Second, func() error {
		addr, err := sentinel.MasterAddr()
		if err == nil && addr != sentinel.Replica().Addr() {
			err = errors.New("sentinel still names " + addr + " as master")
		}
		return err
	})
	waitFor(t, 10*time.Second, func() error {
		short, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		return m.Register(short, k, "tcp://b", time.Minute)
	})
	got, err := m.Lookup(ctx, k)
	if err != nil || !slices.Contains(got, "tcp://b") {
		t.Fatalf("lookup after failover = %v, %v; want tcp://b", got, err)
	}
}
