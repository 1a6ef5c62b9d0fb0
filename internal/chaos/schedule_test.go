package chaos

import (
	"reflect"
	"testing"
	"time"
)

// The schedule comes from the seed alone; each kind of fault comes once
// before any but kill-actor comes twice; at least one server and one
// proxy stay up; one Redis fault at a time; every victim is back before
// the load ends.
func TestSchedule(t *testing.T) {
	c := cast{servers: []string{"srv1", "srv2", "srv3"}, proxies: []string{"p1", "p2"},
		clients: loadClients, actors: actorsOf(ModePubSub)}
	const d = 60 * time.Second
	for seed := int64(1); seed <= 200; seed++ {
		a := schedule(seed, d, 3*time.Second, c)
		if b := schedule(seed, d, 3*time.Second, c); !reflect.DeepEqual(a, b) {
			t.Fatalf("seed %d: two schedules differ:\n%v\n%v", seed, a, b)
		}
		seen := map[string]bool{}
		for i, f := range a {
			if len(seen) == 5 {
				break
			}
			if seen[f.Kind] && f.Kind != FaultActor {
				t.Errorf("seed %d: fault %d is a second %s before every kind came once: %v", seed, i, f.Kind, a)
			}
			seen[f.Kind] = true
		}
		if len(seen) < 5 {
			t.Errorf("seed %d: only %d kinds of fault in %v: %v", seed, len(seen), d, a)
		}
		back := map[string]time.Duration{}
		for _, f := range a {
			if f.At < faultLead || f.At+f.Down > d-faultLead+10*time.Millisecond {
				t.Errorf("seed %d: %v outside the load's [%v, %v]", seed, f, faultLead, d-faultLead)
			}
			switch f.Kind {
			case FaultServer, FaultProxy, FaultRedisRestart, FaultRedisPause:
				if back[f.Victim] > f.At {
					t.Errorf("seed %d: %v while %s is still down", seed, f, f.Victim)
				}
				back[f.Victim] = f.At + f.Down
			case FaultActor:
				if f.Actor == "" || back[f.Victim] > f.At {
					t.Errorf("seed %d: %v: no actor, or its victim is down", seed, f)
				}
			}
			for _, names := range [][]string{c.servers, c.proxies} {
				up := 0
				for _, n := range names {
					if back[n] <= f.At {
						up++
					}
				}
				if up == 0 {
					t.Errorf("seed %d: at %v every one of %v is down", seed, f.At, names)
				}
			}
		}
	}
	if a, b := schedule(1, d, 3*time.Second, c), schedule(2, d, 3*time.Second, c); reflect.DeepEqual(a, b) {
		t.Errorf("seeds 1 and 2 give the same schedule")
	}
}
