package matchmaker_test

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relay-dev/relay/internal/testredis"
	"github.com/relay-dev/relay/matchmaker"
)

// stormBound is how soon after a registration storm starts every node must
// be discoverable. Measured figures are logged (go test -v -run Storm).
const stormBound = 3 * time.Second

// redisStats is what a storm costs Redis, from INFO.
type redisStats struct {
	commands, publishes, evalshas int64
	cpu                           float64 // seconds, user + sys
}

func readStats(t testing.TB, srv *testredis.Server) redisStats {
	t.Helper()
	num := func(field string) float64 {
		v, err := srv.Info(field)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(v, "calls=") { // cmdstat_*: calls=N,usec=…
			v = strings.TrimPrefix(strings.Split(v, ",")[0], "calls=")
		}
		f, _ := strconv.ParseFloat(v, 64)
		return f
	}
	return redisStats{
		commands:  int64(num("total_commands_processed")),
		publishes: int64(num("cmdstat_publish")),
		evalshas:  int64(num("cmdstat_evalsha")),
		cpu:       num("used_cpu_user") + num("used_cpu_sys"),
	}
}

// A registration storm: 1,000 nodes start at once, as 50 processes (each
// one matchmaker client with its change subscription) of 20 nodes, every
// node registering its bare topic and its directed key. Batched, each
// process sends one RegisterMany of its 40 entries; unbatched (for
// comparison), 2,000 Register calls. Either way every node is discoverable
// within stormBound of the start; the log gives what Redis did meanwhile.
func TestRedisRegistrationStorm(t *testing.T) {
	verifyNoLeaks(t)
	const procs, perProc = 50, 20
	srv := testredis.Start(t)
	clients := make([]*matchmaker.Redis, procs)
	for i := range clients {
		clients[i] = newTestRedis(t, srv.URL())
	}
	waitSubscribers(t, srv, procs)
	observer := newTestRedis(t, srv.URL())
	ctx := ctxTimeout(t, 60*time.Second)

	for _, batched := range []bool{true, false} {
		exchange := map[bool]string{true: "batched", false: "unbatched"}[batched]
		bare := matchmaker.Key{Exchange: exchange, Topic: "compute"}
		entries := func(p int) []matchmaker.Entry {
			var es []matchmaker.Entry
			for n := p * perProc; n < (p+1)*perProc; n++ {
				addr := fmt.Sprintf("tcp://10.0.%d.%d:7000", n/250, n%250)
				directed := bare
				directed.Server = "node-" + strconv.Itoa(n)
				es = append(es, matchmaker.Entry{Key: bare, Addr: addr}, matchmaker.Entry{Key: directed, Addr: addr})
			}
			return es
		}
		before := readStats(t, srv)
		start := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, procs*perProc*2)
		for p, m := range clients {
			es := entries(p)
			if batched {
				wg.Go(func() { errs <- m.RegisterMany(ctx, es, time.Minute) })
				continue
			}
			for i := 0; i < len(es); i += 2 { // one goroutine per node
				wg.Go(func() {
					errs <- m.Register(ctx, es[i].Key, es[i].Addr, time.Minute)
					errs <- m.Register(ctx, es[i+1].Key, es[i+1].Addr, time.Minute)
				})
			}
		}
		wg.Wait()
		took := time.Since(start)
		after := readStats(t, srv)
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("%s: %v", exchange, err)
			}
		}
		// Every node discoverable: the bare topic lists all, each directed
		// key its node.
		waitFor(t, stormBound-time.Since(start), func() error {
			got, err := observer.Lookup(ctx, bare)
			if err != nil {
				return err
			}
			if len(got) != procs*perProc {
				return fmt.Errorf("%s: %d of %d nodes registered under %s", exchange, len(got), procs*perProc, bare)
			}
			for p := range procs {
				for i, e := range entries(p) {
					if i%2 == 0 {
						continue
					}
					if got, err := observer.Lookup(ctx, e.Key); err != nil || len(got) != 1 || got[0] != e.Addr {
						return fmt.Errorf("%s: lookup %s = %v, %v", exchange, e.Key, got, err)
					}
				}
			}
			return nil
		})
		discoverable := time.Since(start)
		cmds := after.commands - before.commands
		t.Logf("%s storm, 1000 nodes / %d processes: registered in %v, all discoverable after %v; Redis: %d commands (%d EVALSHA, %d PUBLISH) = %.0f commands/s, %.0f ms CPU",
			exchange, procs, took.Round(time.Millisecond), discoverable.Round(time.Millisecond),
			cmds, after.evalshas-before.evalshas, after.publishes-before.publishes,
			float64(cmds)/took.Seconds(), (after.cpu-before.cpu)*1000)
	}
}
