package relay

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/relay-dev/relay/internal/poll"
	"github.com/relay-dev/relay/internal/testredis"
	"github.com/relay-dev/relay/matchmaker"
)

// After Redis restarted empty, a lookup that finds some servers registered
// again also returns those known before that have not re-registered yet: a
// fanout sent meanwhile still reaches every server.
func TestRoutesKeepWhatRedisLostWhileServersRegisterAgain(t *testing.T) {
	srv := testredis.Start(t)
	mm, err := matchmaker.Open(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer mm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	k := matchmaker.Key{Exchange: t.Name(), Topic: "compute"}
	for _, a := range []string{"tcp://a:1", "tcp://b:1"} {
		if err := mm.Register(ctx, k, a, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	r := newRoutes(mm, 5*time.Second)
	got, _, err := r.lookup(ctx, k)
	if err != nil || len(got) != 2 {
		t.Fatalf("lookup before the restart = %v, %v; want both", got, err)
	}
	// Redis loss is noticed by a marker key and the change subscription.
	poll.WaitFor(t, 5*time.Second, func() error {
		if v, err := srv.Do("GET", "relay:marker"); err != nil || v == nil {
			return fmt.Errorf("relay:marker = %v, %v", v, err)
		}
		reply, err := srv.Do("PUBSUB", "NUMSUB", matchmaker.RedisChangesChannel)
		if arr, _ := reply.([]any); err != nil || len(arr) != 2 || arr[1].(int64) < 1 {
			return fmt.Errorf("subscribers: %v, %v", reply, err)
		}
		return nil
	})
	lost := mm.Lost()
	srv.Restart() // empty
	select {
	case <-lost:
	case <-time.After(10 * time.Second):
		t.Fatal("the matchmaker did not notice that Redis lost its registrations")
	}
	if err := mm.Register(ctx, k, "tcp://a:1", time.Minute); err != nil {
		t.Fatal(err)
	}
	// Past the cache's age, so that the lookup asks Redis.
	got, _, err = r.lookupAt(ctx, k, time.Now().Add(routeMaxAge))
	slices.Sort(got)
	if err != nil || !slices.Equal(got, []string{"tcp://a:1", "tcp://b:1"}) {
		t.Fatalf("lookup after the restart with one server back = %v, %v; want both", got, err)
	}
}
