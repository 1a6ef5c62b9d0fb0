package matchmaker_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/relay-dev/relay/internal/testutil"

	"github.com/relay-dev/relay/internal/testredis"
	"github.com/relay-dev/relay/matchmaker"
)

func TestList(t *testing.T) {
	rs := testredis.Start(t)
	red, err := matchmaker.Open(rs.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer red.Close()
	mem := matchmaker.NewMemory(t.Name())
	defer mem.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for name, m := range map[string]matchmaker.Matchmaker{"memory": mem, "redis": red} {
		bare := matchmaker.Key{Exchange: "x", Topic: "t"}
		directed := matchmaker.Key{Exchange: "x", Topic: "t", Server: "h1"}
		must(t, m.Register(ctx, bare, "tcp://b", time.Minute))
		must(t, m.Register(ctx, bare, "tcp://a", time.Minute))
		must(t, m.Register(ctx, directed, "tcp://a", time.Minute))
		must(t, m.Register(ctx, matchmaker.Key{Topic: "gone"}, "tcp://c", 50*time.Millisecond))
		testutil.WaitFor(t, 3*time.Second, func() error {
			regs, err := m.(matchmaker.Lister).List(ctx)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			var got []string
			for _, r := range regs {
				if ttl := time.Until(r.Expires); ttl <= 0 || ttl > time.Minute {
					t.Errorf("%s: %v %s expires in %v", name, r.Key, r.Addr, ttl)
				}
				got = append(got, r.Key.String()+" "+r.Addr)
			}
			if want := []string{"x/t tcp://a", "x/t tcp://b", "x/t/h1 tcp://a"}; !slices.Equal(got, want) {
				return fmt.Errorf("%s: List = %v, want %v (the 50ms registration expired)", name, got, want)
			}
			return nil
		})
	}
}

func TestParseKey(t *testing.T) {
	for _, k := range []matchmaker.Key{{Topic: "t"}, {Exchange: "x", Topic: "t"}, {Exchange: "x", Topic: "t", Server: "s"}} {
		got, err := matchmaker.ParseKey(k.String())
		if err != nil || got != k {
			t.Errorf("ParseKey(%q) = %v, %v", k.String(), got, err)
		}
	}
	for _, bad := range []string{"", "t", "x/", "x/t/", "a/b/c/d"} {
		if _, err := matchmaker.ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) accepted", bad)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
