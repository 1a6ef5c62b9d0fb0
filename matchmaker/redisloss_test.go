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

// evalshaCalls is how many EVALSHA srv has run.
func evalshaCalls(t testing.TB, srv *testredis.Server) int {
	t.Helper()
	v, err := srv.Info("cmdstat_evalsha") // calls=N,usec=…
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(strings.TrimPrefix(strings.Split(v, ",")[0], "calls="))
	return n
}

// waitMarker waits until the loss check has set relay:marker.
func waitMarker(t testing.TB, srv *testredis.Server) {
	t.Helper()
	waitFor(t, 5*time.Second, func() error {
		if v, err := srv.Do("GET", "relay:marker"); err != nil || v == nil {
			return fmt.Errorf("relay:marker = %v, %v", v, err)
		}
		return nil
	})
}

// Redis restarted with an empty dataset: Lost closes as soon as the client
// reconnects, not at the next periodic check (an hour here), so that the
// owner re-registers at once.
func TestRedisLostOnEmptyRestart(t *testing.T) {
	verifyNoLeaks(t)
	srv := testredis.Start(t)
	m := openRedis(t, srv.URL(), time.Hour)
	ctx := ctxTimeout(t, 30*time.Second)
	k := matchmaker.Key{Exchange: "x", Topic: "t"}
	waitMarker(t, srv)
	waitSubscribers(t, srv, 1)
	lost := m.Lost()
	if err := m.Register(ctx, k, "tcp://a", time.Minute); err != nil {
		t.Fatal(err)
	}

	srv.Restart()
	took := waitClosed(t, lost, 5*time.Second, "Lost after Redis restarted empty")
	t.Logf("Lost closed %v after Redis answered again", took.Round(time.Millisecond))
	if got, err := m.Lookup(ctx, k); err != nil || len(got) != 0 {
		t.Fatalf("lookup after the empty restart = %v, %v; want nothing (the test is void otherwise)", got, err)
	}
	select {
	case <-m.Lost():
		t.Fatal("the new Lost channel is already closed")
	default:
	}
	if err := m.Register(ctx, k, "tcp://a", time.Minute); err != nil {
		t.Fatal(err)
	}
	if got, err := m.Lookup(ctx, k); err != nil || !slices.Equal(got, []string{"tcp://a"}) {
		t.Fatalf("lookup after re-registering = %v, %v", got, err)
	}
}

// A reconnect to a Redis that kept its data is not a loss.
func TestRedisReconnectIsNotLoss(t *testing.T) {
	verifyNoLeaks(t)
	srv := testredis.Start(t)
	m := openRedis(t, srv.URL(), time.Hour)
	waitMarker(t, srv)
	waitSubscribers(t, srv, 1)
	lost := m.Lost()
	before := evalshaCalls(t, srv)
	if _, err := srv.Do("CLIENT", "KILL", "TYPE", "pubsub"); err != nil {
		t.Fatal(err)
	}
	// The restored subscription asks for a check; wait until it ran.
	waitFor(t, 10*time.Second, func() error {
		if n := evalshaCalls(t, srv); n <= before {
			return fmt.Errorf("no check since the reconnect (%d scripts run)", n)
		}
		return nil
	})
	select {
	case <-lost:
		t.Fatal("Lost closed by a reconnect to a Redis that kept its data")
	default:
	}
}

// A flush is found by the periodic check.
func TestRedisLostOnFlush(t *testing.T) {
	verifyNoLeaks(t)
	srv := testredis.Start(t)
	m := openRedis(t, srv.URL(), 100*time.Millisecond)
	waitMarker(t, srv)
	lost := m.Lost()
	if _, err := srv.Do("FLUSHALL"); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, lost, 5*time.Second, "Lost after FLUSHALL")
}

// Every failure caused by the name service wraps ErrMatchmaker (and the
// context's error when it ran out); misuse and Close do not.
func TestRedisErrMatchmaker(t *testing.T) {
	verifyNoLeaks(t)
	srv := testredis.Start(t)
	m := newTestRedis(t, srv.URL())
	k := matchmaker.Key{Exchange: "x", Topic: "t"}
	srv.Stop()
	ops := map[string]func(context.Context) error{
		"register": func(ctx context.Context) error { return m.Register(ctx, k, "a", time.Minute) },
		"register many": func(ctx context.Context) error {
			return m.RegisterMany(ctx, []matchmaker.Entry{{Key: k, Addr: "a"}}, time.Minute)
		},
		"unregister": func(ctx context.Context) error { return m.Unregister(ctx, k, "a") },
		"lookup":     func(ctx context.Context) error { _, err := m.Lookup(ctx, k); return err },
		"list":       func(ctx context.Context) error { _, err := m.List(ctx); return err },
	}
	for name, op := range ops {
		err := op(ctxTimeout(t, 2*time.Second))
		if !errors.Is(err, matchmaker.ErrMatchmaker) || !strings.Contains(err.Error(), srv.Addr()) {
			t.Errorf("%s on a stopped Redis = %v; want ErrMatchmaker naming %s", name, err, srv.Addr())
		}
	}
	if err := m.Register(context.Background(), k, "a", 0); err == nil || errors.Is(err, matchmaker.ErrMatchmaker) {
		t.Errorf("register with ttl 0 = %v; want an error of the caller's, not ErrMatchmaker", err)
	}
	m.Close()
	if _, err := m.Lookup(context.Background(), k); !errors.Is(err, matchmaker.ErrClosed) || errors.Is(err, matchmaker.ErrMatchmaker) {
		t.Errorf("lookup after Close = %v; want ErrClosed only", err)
	}
}

// The first lookup that succeeds after Redis came back empty returns only
// once Lost is closed: a caller that compares its answer (some servers
// registered again already) with what it knew learns that the difference
// is Redis's loss, not servers gone.
func TestRedisLookupAfterReconnectSeesLoss(t *testing.T) {
	verifyNoLeaks(t)
	srv := testredis.Start(t)
	m := openRedis(t, srv.URL(), time.Hour)
	other := openRedis(t, srv.URL(), time.Hour)
	ctx := ctxTimeout(t, 30*time.Second)
	k := matchmaker.Key{Exchange: "x", Topic: "t"}
	waitMarker(t, srv)
	waitSubscribers(t, srv, 2)
	for _, a := range []string{"tcp://a", "tcp://b"} {
		if err := m.Register(ctx, k, a, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	lost := m.Lost()
	srv.Stop()
	if _, err := m.Lookup(ctxTimeout(t, 2*time.Second), k); err == nil {
		t.Fatal("lookup while Redis is down succeeded")
	}
	srv.Restart() // empty
	// One server is quicker to register again than the lookup.
	waitFor(t, 10*time.Second, func() error { return other.Register(ctx, k, "tcp://a", time.Minute) })
	got, err := m.Lookup(ctx, k)
	if err != nil || !slices.Equal(got, []string{"tcp://a"}) {
		t.Fatalf("lookup after the restart = %v, %v; want [tcp://a] (the test is void otherwise)", got, err)
	}
	select {
	case <-lost:
	default:
		t.Fatal("the first lookup after Redis came back empty returned before Lost closed")
	}
}
