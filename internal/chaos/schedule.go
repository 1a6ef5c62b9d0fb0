package chaos

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/relay-dev/relay"
)

// The faults a run injects.
const (
	FaultActor        = "kill-actor"    // an actor of a node fails (Node.KillActor); its supervisor restarts it
	FaultServer       = "kill-server"   // kill -9 of a node serve process; started again after Down
	FaultProxy        = "kill-proxy"    // kill -9 of a proxy process; started again after Down
	FaultRedisRestart = "redis-restart" // kill -9 of redis-server; started again after Down, empty
	FaultRedisPause   = "redis-pause"   // Redis answers nobody for Down (CLIENT PAUSE), its data kept
)

// Fault is one fault of the schedule. The schedule comes from the seed
// alone: the same seed and flags give the same faults at the same times.
type Fault struct {
	At     time.Duration `json:"at"`               // since the load began
	Kind   string        `json:"kind"`             // one of the Fault constants
	Victim string        `json:"victim"`           // a process or, for kill-actor, also a client node of the harness
	Actor  string        `json:"actor,omitempty"`  // kill-actor: the actor
	Down   time.Duration `json:"down,omitempty"`   // how long the victim stays down (or Redis paused)
	Result string        `json:"result,omitempty"` // filled in by the run: what happened
	Back   string        `json:"back,omitempty"`   // filled in by the run: when the victim was back
}

// String renders the fault as a line of the schedule: when, what, whom.
func (f Fault) String() string {
	s := fmt.Sprintf("%7.2fs  %-13s %-13s", f.At.Seconds(), f.Kind, f.Victim)
	switch {
	case f.Actor != "":
		s += " actor " + f.Actor
	case f.Kind == FaultRedisPause:
		s += fmt.Sprintf(" paused %v", f.Down)
	case f.Down > 0:
		s += fmt.Sprintf(" down %v", f.Down)
	}
	return s
}

// cast is who a schedule can pick.
type cast struct {
	servers, proxies, clients []string
	actors                    []string
}

// Faults never start in the first second of the load nor end in its last
// second; a victim is down between minDown and maxDown.
const (
	faultLead = time.Second
	minDown   = 500 * time.Millisecond
	maxDown   = 3 * time.Second
)

// schedule draws the faults of a run of length d from seed. Every kind
// that the cast allows comes once before any but kill-actor comes twice
// (kill-actor fills in while the next kind cannot be: its victim is
// still down); at most all but one server and all but one proxy are down
// at once, one Redis fault at a time, and every victim is back a second
// before the load ends.
func schedule(seed int64, d, meanGap time.Duration, c cast) []Fault {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6368616f73)) // "chaos"
	kinds := []string{FaultActor, FaultServer, FaultRedisRestart, FaultRedisPause}
	if len(c.proxies) > 0 {
		kinds = append(kinds, FaultProxy)
	}
	first := slices.Clone(kinds)
	rng.Shuffle(len(first), func(i, j int) { first[i], first[j] = first[j], first[i] })
	weights := map[string]int{FaultActor: 35, FaultServer: 30, FaultProxy: 15, FaultRedisRestart: 10, FaultRedisPause: 10}

	upAt := map[string]time.Duration{} // victim -> when it is back
	up := func(names []string, t time.Duration) (up []string) {
		for _, n := range names {
			if upAt[n] <= t {
				up = append(up, n)
			}
		}
		return up
	}
	// victims returns whom a fault of kind may hit at t.
	victims := func(kind string, t time.Duration) []string {
		switch kind {
		case FaultServer, FaultProxy:
			names := c.servers
			if kind == FaultProxy {
				names = c.proxies
			}
			if u := up(names, t); len(u) >= 2 { // one stays up
				return u
			}
			return nil
		case FaultRedisRestart, FaultRedisPause:
			return up([]string{"redis"}, t)
		}
		return append(up(c.servers, t), c.clients...)
	}
	var out []Fault
	end := d - faultLead
	for t := faultLead + jitter(rng, meanGap); t < end; t += jitter(rng, meanGap) {
		down := min(minDown+time.Duration(rng.Int64N(int64(maxDown-minDown))), end-t)
		var possible []string
		for _, k := range kinds {
			if len(victims(k, t)) > 0 && (k == FaultActor || down >= minDown) {
				possible = append(possible, k)
			}
		}
		kind := FaultActor
		if i := slices.IndexFunc(first, func(k string) bool { return slices.Contains(possible, k) }); i >= 0 {
			kind = first[i]
			first = slices.Delete(first, i, i+1)
		} else if len(first) == 0 {
			kind = pick(rng, possible, weights)
		}
		vs := victims(kind, t)
		f := Fault{At: t.Round(10 * time.Millisecond), Kind: kind, Victim: vs[rng.IntN(len(vs))]}
		if kind == FaultActor {
			f.Actor = c.actors[rng.IntN(len(c.actors))]
		} else {
			f.Down = down.Round(10 * time.Millisecond)
			upAt[f.Victim] = t + f.Down
		}
		out = append(out, f)
	}
	return out
}

// jitter returns a gap between half and one and a half times mean.
func jitter(rng *rand.Rand, mean time.Duration) time.Duration {
	return mean/2 + time.Duration(rng.Int64N(int64(mean)))
}

// pick draws one of kinds by weight.
func pick(rng *rand.Rand, kinds []string, weights map[string]int) string {
	total := 0
	for _, k := range kinds {
		total += weights[k]
	}
	n := rng.IntN(total)
	for _, k := range kinds {
		if n -= weights[k]; n < 0 {
			return k
		}
	}
	return kinds[len(kinds)-1]
}

// actorsOf returns the actors of a node in mode, which kill-actor picks
// from.
func actorsOf(mode string) []string {
	a := []string{relay.ActorRouter, relay.ActorHandlers, relay.ActorDealers, relay.ActorResender}
	if mode == ModePubSub {
		a = append(a, relay.ActorSubscriber)
	}
	return a
}
