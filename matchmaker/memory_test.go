package matchmaker_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/relay-dev/relay/internal/testutil"

	"go.uber.org/goleak"

	"github.com/relay-dev/relay/matchmaker"
)

func TestMain(m *testing.M) {
	matchmaker.SetRedisLogger(nil) // go-redis's own lines would flood stderr during outages
	goleak.VerifyTestMain(m, goRedisLingering...)
}

func TestMemoryRegisterLookupUnregister(t *testing.T) {
	ctx := context.Background()
	a, b := matchmaker.NewMemory(t.Name()), matchmaker.NewMemory(t.Name())
	defer a.Close()
	defer b.Close()
	bare := matchmaker.Key{Topic: "compute"}
	directed := matchmaker.Key{Topic: "compute", Server: "h1"}
	changed := b.Changed()
	if err := a.Register(ctx, bare, "tcp://127.0.0.1:2", time.Minute); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	default:
		t.Fatal("Changed not closed by a registration in another handle of the same registry")
	}
	if err := a.Register(ctx, bare, "tcp://127.0.0.1:1", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := a.Register(ctx, directed, "tcp://127.0.0.1:1", time.Minute); err != nil {
		t.Fatal(err)
	}
	got, err := b.Lookup(ctx, bare)
	if err != nil || !slices.Equal(got, []string{"tcp://127.0.0.1:1", "tcp://127.0.0.1:2"}) {
		t.Fatalf("bare lookup = %v, %v; want both addresses, sorted", got, err)
	}
	if got, _ := b.Lookup(ctx, directed); !slices.Equal(got, []string{"tcp://127.0.0.1:1"}) {
		t.Fatalf("directed lookup = %v; want the one directed registration", got)
	}
	if got, _ := matchmaker.NewMemory(t.Name()+"-other").Lookup(ctx, bare); len(got) != 0 {
		t.Fatalf("another registry sees %v", got)
	}
	if err := a.Unregister(ctx, bare, "tcp://127.0.0.1:2"); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.Lookup(ctx, bare); !slices.Equal(got, []string{"tcp://127.0.0.1:1"}) {
		t.Fatalf("after unregister: %v", got)
	}
}

// Liveness is per member: one expired registration leaves the others.
func TestMemoryTTLPerMember(t *testing.T) {
	ctx := context.Background()
	m := matchmaker.NewMemory(t.Name())
	defer m.Close()
	k := matchmaker.Key{Exchange: "x", Topic: "t"}
	if err := m.Register(ctx, k, "short", 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := m.Register(ctx, k, "long", time.Minute); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 2*time.Second, func() error {
		if got, _ := m.Lookup(ctx, k); !slices.Equal(got, []string{"long"}) {
			return fmt.Errorf("lookup = %v; want only the live member after a 20ms TTL", got)
		}
		return nil
	})
}

func TestOpen(t *testing.T) {
	for _, bad := range []string{"memory://", "bogus://x", "://"} {
		if _, err := matchmaker.Open(bad); !errors.Is(err, matchmaker.ErrBadURL) {
			t.Errorf("Open(%q) = %v, want ErrBadURL", bad, err)
		}
	}
	m, err := matchmaker.Open("memory://" + t.Name())
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	if _, err := m.Lookup(context.Background(), matchmaker.Key{Topic: "t"}); !errors.Is(err, matchmaker.ErrClosed) {
		t.Errorf("lookup after Close = %v, want ErrClosed", err)
	}
}

// RegisterMany files every entry with one change notice; Lost never closes.
func TestMemoryRegisterMany(t *testing.T) {
	ctx := context.Background()
	m := matchmaker.NewMemory(t.Name())
	defer m.Close()
	changed := m.Changed()
	es := []matchmaker.Entry{
		{Key: matchmaker.Key{Topic: "a"}, Addr: "tcp://1"},
		{Key: matchmaker.Key{Topic: "a", Server: "h"}, Addr: "tcp://1"},
		{Key: matchmaker.Key{Topic: "b"}, Addr: "tcp://2"},
	}
	if err := m.RegisterMany(ctx, es, time.Minute); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	default:
		t.Fatal("Changed not closed by RegisterMany")
	}
	for _, e := range es {
		if got, _ := m.Lookup(ctx, e.Key); !slices.Equal(got, []string{e.Addr}) {
			t.Errorf("lookup %s = %v", e.Key, got)
		}
	}
	changed = m.Changed()
	if err := m.RegisterMany(ctx, es, time.Minute); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
		t.Error("Changed closed by renewals only")
	default:
	}
	select {
	case <-m.Lost():
		t.Error("Lost closed for an in-process registry")
	default:
	}
	m.Close()
	if err := m.RegisterMany(ctx, es, time.Minute); !errors.Is(err, matchmaker.ErrClosed) {
		t.Errorf("RegisterMany after Close = %v, want ErrClosed", err)
	}
}
