package chaos

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/relay-dev/relay"
	"github.com/relay-dev/relay/internal/proc"
	"github.com/relay-dev/relay/internal/testredis"
	"github.com/relay-dev/relay/internal/testutil"
	"github.com/relay-dev/relay/matchmaker"
)

// Addresses: the harness's clients bind clientAddr, server i binds
// 127.0.0.(21+i), proxy i 127.0.0.(41+i); Redis listens on 127.0.0.1.
const (
	clientAddr = "127.0.0.20"
	maxMembers = 16
)

func serverAddr(i int) string { return fmt.Sprintf("127.0.0.%d", 21+i) }
func proxyAddr(i int) string  { return fmt.Sprintf("127.0.0.%d", 41+i) }

// settle is how long a server must have been ready before a fanout is
// expected to reach it: its registration and, in pub/sub mode, its
// subscription must have reached the senders.
const settle = 2 * time.Second

// harness is one run.
type harness struct {
	cfg     Config
	rs      *testredis.Server
	servers []*member
	proxies []*member
	clients map[string]*relay.Node
	logFile *os.File // the client nodes' log
	http    *http.Client

	ctx    context.Context // ends at teardown: stops restarts
	cancel context.CancelFunc

	begin    time.Time      // when the load began
	restarts sync.WaitGroup // restarts in progress

	// mu guards the fields below.
	mu          sync.Mutex
	redisStarts int
	redisKills  []time.Time
	notes       []string
	undelivered map[string]bool // keys of the messages the senders reported undelivered
}

// Run runs the cluster, the load and the faults of cfg, and returns what
// happened. It stops every process it started before it returns, also on
// error or when ctx ends (the run then ends early and reports what it
// saw). While it runs, go-redis's log (one for the whole process) goes to
// the client nodes' log, clients.log; afterwards it is discarded.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	var err error
	if cfg.Dir, err = testredis.RunDir("chaos", cfg.Dir, cfg.validate); err != nil {
		return nil, err
	}
	cfg.logf("journals and logs in %s", cfg.Dir)
	h := &harness{cfg: cfg, clients: map[string]*relay.Node{},
		http: &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	defer h.teardown()
	if err := h.setUp(ctx); err != nil {
		return nil, err
	}
	return h.run(ctx)
}

// run runs the load and the faults, drains, and accounts.
func (h *harness) run(ctx context.Context) (*Report, error) {
	cfg := &h.cfg
	faults := schedule(cfg.Seed, cfg.Duration, cfg.MeanGap, h.cast())
	cfg.logf("faults (seed %d):", cfg.Seed)
	for _, f := range faults {
		cfg.logf("  %s", f)
	}
	startUsage := h.usage()
	startStats := h.clientStats()
	loadAvg := [2]string{proc.LoadAverage()}

	l := newLoad(cfg, h.clients, h.memberNames(h.servers))
	h.begin = time.Now()
	l.start()
	cfg.logf("load: %d messages/s for %v", cfg.Rate, cfg.Duration)
	faultsDone := make(chan struct{})
	go func() { // ends when the schedule is done or ctx ends
		defer close(faultsDone)
		h.inject(ctx, faults)
	}()
	select {
	case <-ctx.Done():
	case <-time.After(cfg.Duration): // the length of the run under test
	}
	<-faultsDone
	ops, stragglers := l.finish(cfg.CallTimeout + cfg.LateAfter + time.Second)
	h.restarts.Wait()
	cfg.logf("load stopped after %v; draining (up to %v)", time.Since(h.begin).Round(time.Millisecond), cfg.CastTimeout+2*time.Second)
	h.drain(ops)

	survivors := h.survivorStats()
	endStats := h.clientStats()
	endUsage := h.usage()
	loadAvg[1] = proc.LoadAverage()
	for _, n := range h.clients {
		n.Close()
	}
	clear(h.clients)
	waitDone(stragglers, 10*time.Second)
	h.stopAll()

	rep := h.account(ops, faults, startStats, endStats)
	rep.LoadAverage = loadAvg
	rep.Skipped = l.skipped
	rep.addProcesses(h, startUsage, endUsage)
	rep.addCounters(startStats, endStats, survivors)
	h.mu.Lock()
	rep.Notes = append(rep.Notes, h.notes...)
	h.mu.Unlock()
	if ctx.Err() != nil {
		rep.Notes = append(rep.Notes, "the run was interrupted: "+ctx.Err().Error())
	}
	return rep, nil
}

// cast returns who the schedule may pick.
func (h *harness) cast() cast {
	return cast{servers: h.memberNames(h.servers), proxies: h.memberNames(h.proxies),
		clients: loadClients, actors: actorsOf(h.cfg.Mode)}
}

func (h *harness) memberNames(ms []*member) []string {
	var names []string
	for _, m := range ms {
		names = append(names, m.name)
	}
	return names
}

// note records a line for the report.
func (h *harness) note(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	h.cfg.logf("note: %s", s)
	h.mu.Lock()
	h.notes = append(h.notes, s)
	h.mu.Unlock()
}

// drain waits until every message accepted has been applied, or the casts'
// deadline (plus slack) has passed since the load stopped.
func (h *harness) drain(ops []op) {
	want := map[string]bool{}
	for _, o := range ops {
		if o.accepted() && !isCall(o.Kind) && o.Kind != kindFanout {
			want[o.Key] = true
		}
	}
	_ = testutil.Poll(h.cfg.CastTimeout+2*time.Second, func() error {
		missing := len(want)
		for _, m := range h.servers {
			for _, inc := range m.snapshot() {
				recs, _ := readJournal(inc.journal)
				for _, r := range recs {
					if r.kind == recApplied && want[r.key] {
						missing--
						want[r.key] = false
					}
				}
			}
		}
		if missing > 0 {
			return fmt.Errorf("%d not applied", missing)
		}
		return nil
	})
}

// teardown stops whatever still runs: client nodes, processes, Redis.
func (h *harness) teardown() {
	h.cancel()
	h.restarts.Wait()
	for _, n := range h.clients {
		n.Close()
	}
	h.stopAll()
	if h.rs != nil {
		h.rs.Stop()
	}
	if h.logFile != nil {
		matchmaker.SetRedisLogger(slog.New(slog.DiscardHandler))
		h.logFile.Close()
	}
	h.http.CloseIdleConnections()
}

// stopAll stops the servers and proxies (SIGTERM), in parallel.
func (h *harness) stopAll() {
	var wg sync.WaitGroup
	for _, m := range append(append([]*member{}, h.servers...), h.proxies...) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.stop()
		}()
	}
	wg.Wait()
}

// waitDone waits for wait to return, at most d.
func waitDone(wait func(), d time.Duration) {
	done := make(chan struct{})
	go func() { // ends when wait returns
		wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(d):
	}
}
