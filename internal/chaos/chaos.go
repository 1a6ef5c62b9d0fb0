package chaos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		return nil, fmt.Errorf("chaos: redis-server not found: run `make deps` (installs redis-server)")
	}
	if cfg.Dir == "" {
		dir, err := os.MkdirTemp("", "relay-chaos-")
		if err != nil {
			return nil, fmt.Errorf("chaos: %w", err)
		}
		cfg.Dir = dir
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

// setUp starts Redis, the proxies, the servers and the client nodes, and
// waits until messages of every kind reach the servers.
func (h *harness) setUp(ctx context.Context) error {
	cfg := &h.cfg
	addrs := []string{clientAddr}
	for i := range cfg.Servers {
		addrs = append(addrs, serverAddr(i))
	}
	for i := range h.proxyCount() {
		addrs = append(addrs, proxyAddr(i))
	}
	if err := proc.CheckLoopback(addrs...); err != nil {
		return fmt.Errorf("chaos: %w", err)
	}
	redisDir := filepath.Join(cfg.Dir, "redis")
	if err := os.MkdirAll(redisDir, 0o755); err != nil {
		return fmt.Errorf("chaos: %w", err)
	}
	rs, err := testredis.Launch(redisDir)
	if err != nil {
		return fmt.Errorf("chaos: %w", err)
	}
	h.rs, h.redisStarts = rs, 1
	cfg.logf("redis-server on %s (log %s)", rs.Addr(), redisDir)

	// The proxies first: a node in a proxy mode needs one to start.
	if h.proxies, err = h.launchAll(h.proxyCount(), h.newProxy); err != nil {
		return err
	}
	if h.servers, err = h.launchAll(cfg.Servers, h.newServer); err != nil {
		return err
	}
	cfg.logf("%d servers and %d proxies ready (%s mode)", len(h.servers), len(h.proxies), cfg.Mode)

	if err := h.startClients(ctx); err != nil {
		return err
	}
	return h.probe(ctx)
}

// proxyCount returns how many proxies the mode runs.
func (h *harness) proxyCount() int {
	if h.cfg.Mode == ModeDirect {
		return 0
	}
	return h.cfg.Proxies
}

// launchAll prepares n members with prepare, launches them in parallel
// and waits until all are ready.
func (h *harness) launchAll(n int, prepare func(i int) (*member, error)) ([]*member, error) {
	ms := make([]*member, n)
	for i := range n {
		m, err := prepare(i)
		if err != nil {
			return nil, err
		}
		ms[i] = m
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = m.launch(h.ctx, h.cfg.NodeBin, h.cfg.Dir, m.port)
		}()
	}
	wg.Wait()
	return ms, errors.Join(errs...)
}

// newServer prepares server i.
func (h *harness) newServer(i int) (*member, error) {
	cfg := &h.cfg
	name, addr := fmt.Sprintf("srv%d", i+1), serverAddr(i)
	ports, err := proc.FreePorts(addr, 2)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(cfg.Dir, name+".data")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	m := &member{name: name, role: roleServer, addr: addr, port: ports[0],
		httpAddr: net.JoinHostPort(addr, strconv.Itoa(ports[1])), ready: "serving demo endpoint"}
	m.args = func(inc *incarnation) []string {
		args := []string{"serve", "--matchmaker", h.rs.URL(), "--host", name, "--bind", addr,
			"--ports", fmt.Sprintf("%d-%d", inc.port, inc.port), "--topic", ServeTopic, "--ttl", cfg.TTL.String(),
			"--http", m.httpAddr, "--journal", inc.journal}
		switch cfg.Mode {
		case ModeRouter:
			args = append(args, "--router-proxy")
		case ModePubSub:
			args = append(args, "--pubsub")
		}
		for _, a := range cfg.ServeArgs {
			args = append(args, strings.NewReplacer("{host}", name, "{dir}", dir).Replace(a))
		}
		return args
	}
	return m, nil
}

// newProxy prepares proxy i of the mode.
func (h *harness) newProxy(i int) (*member, error) {
	cfg := &h.cfg
	addr := proxyAddr(i)
	ports, err := proc.FreePorts(addr, 3)
	if err != nil {
		return nil, err
	}
	m := &member{addr: addr, httpAddr: net.JoinHostPort(addr, strconv.Itoa(ports[2])), ready: "proxy running"}
	common := []string{"--matchmaker", "", "--bind", addr, "--ttl", cfg.TTL.String(), "--http", m.httpAddr}
	var own []string
	if cfg.Mode == ModeRouter {
		m.name, m.role = fmt.Sprintf("router%d", i+1), roleRouter
		own = []string{"proxy", "--router", "--frontend", net.JoinHostPort(addr, strconv.Itoa(ports[0])),
			"--backend", net.JoinHostPort(addr, strconv.Itoa(ports[1]))}
	} else {
		m.name, m.role = fmt.Sprintf("pub%d", i+1), rolePublisher
		// A publisher proxy binds two ports from a range: give it a range
		// of its own, fixed across restarts.
		lo, err := freeRange(addr, 2)
		if err != nil {
			return nil, err
		}
		own = []string{"proxy", "--publisher", "--ack", "--ports", fmt.Sprintf("%d-%d", lo, lo+1)}
	}
	m.args = func(*incarnation) []string {
		args := append(append([]string{}, own...), common...)
		args[len(own)+1] = h.rs.URL()
		return args
	}
	return m, nil
}

// startClients starts the client nodes of the harness, which log to
// clients.log in the work directory.
func (h *harness) startClients(ctx context.Context) error {
	f, err := os.Create(filepath.Join(h.cfg.Dir, "clients.log"))
	if err != nil {
		return fmt.Errorf("chaos: %w", err)
	}
	h.logFile = f
	log := slog.New(slog.NewTextHandler(f, nil))
	matchmaker.SetRedisLogger(log.With("component", "go-redis"))
	for _, name := range append(append([]string{}, loadClients...), clientControl) {
		opts := []relay.Option{relay.WithMatchmaker(h.rs.URL()), relay.WithHost("chaos-" + name),
			relay.WithBindAddress(clientAddr), relay.WithRegistrationTTL(h.cfg.TTL),
			relay.WithLogger(log.With("client", name)), relay.WithUndelivered(h.reportUndelivered), relay.WithLossReports(true)}
		switch h.cfg.Mode {
		case ModeRouter:
			opts = append(opts, relay.WithRouterProxy(true))
		case ModePubSub:
			opts = append(opts, relay.WithPubSub(true))
		}
		if name == clientAcked {
			opts = append(opts, relay.WithAcks(true))
		}
		sctx, cancel := context.WithTimeout(ctx, startTimeout)
		n, err := relay.Start(sctx, opts...)
		cancel()
		if err != nil {
			return fmt.Errorf("chaos: start client node %s: %w", name, err)
		}
		h.clients[name] = n
	}
	return nil
}

// probe waits until a directed call reaches every server, a notification
// reaches one, and (but in router mode) a fanout reaches all. Probes carry
// keys that the accounting leaves out.
func (h *harness) probe(ctx context.Context) error {
	control := h.clients[clientControl]
	seq := 0
	send := func(f func(ctx context.Context, op Op) error) (string, error) {
		seq++
		key := fmt.Sprintf("%s%d", probePrefix, seq)
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		return key, f(cctx, Op{Key: key})
	}
	for _, m := range h.servers {
		err := testutil.Poll(startTimeout, func() error {
			_, err := send(func(ctx context.Context, op Op) error {
				return control.Call(ctx, relay.Target{Topic: ServeTopic, Server: m.name}, MethodApply, op, nil)
			})
			return err
		})
		if err != nil {
			return fmt.Errorf("chaos: server %s unreachable: %w", m.name, err)
		}
	}
	// Notifications and fanouts: until one probe got through (to every
	// server, for fanouts).
	probeUntil := func(what string, f func(ctx context.Context, op Op) error, want int) error {
		var keys []string
		err := testutil.Poll(startTimeout, func() error {
			key, err := send(f)
			if err != nil {
				return err
			}
			keys = append(keys, key)
			return testutil.Poll(time.Second, func() error {
				got := h.appliedProbes()
				for _, k := range keys {
					if got[k] >= want {
						return nil
					}
				}
				return fmt.Errorf("no %s probe applied %d times yet", what, want)
			})
		})
		if err != nil {
			return fmt.Errorf("chaos: %s: %w", what, err)
		}
		return nil
	}
	err := probeUntil("notification", func(ctx context.Context, op Op) error {
		return h.clients[clientNotify].Notify(ctx, relay.Notification{Topic: NotifyTopic, EventType: MethodApply, Payload: op})
	}, 1)
	if err != nil || h.cfg.Mode == ModeRouter {
		return err
	}
	return probeUntil("fanout", func(ctx context.Context, op Op) error {
		return h.clients[clientFanout].Cast(ctx, relay.Target{Topic: ServeTopic, Fanout: true}, MethodApply, op)
	}, len(h.servers))
}

// probePrefix starts the keys of probes.
const probePrefix = "probe/"

// appliedProbes counts, per probe key, the servers whose journals applied
// it so far.
func (h *harness) appliedProbes() map[string]int {
	n := map[string]int{}
	for _, m := range h.servers {
		seen := map[string]bool{}
		for _, inc := range m.snapshot() {
			recs, _ := readJournal(inc.journal)
			for _, r := range recs {
				if r.kind == recApplied && strings.HasPrefix(r.key, probePrefix) && !seen[r.key] {
					seen[r.key] = true
					n[r.key]++
				}
			}
		}
	}
	return n
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

// freeRange returns the first of n consecutive ports of addr that were
// free a moment ago.
func freeRange(addr string, n int) (int, error) {
	for range 50 {
		lo, err := proc.FreePort(addr)
		if err != nil {
			return 0, err
		}
		if ok := func() bool {
			var ls []net.Listener
			defer func() {
				for _, l := range ls {
					l.Close()
				}
			}()
			for p := lo; p < lo+n; p++ {
				l, err := net.Listen("tcp", net.JoinHostPort(addr, strconv.Itoa(p)))
				if err != nil {
					return false
				}
				ls = append(ls, l)
			}
			return true
		}(); ok {
			return lo, nil
		}
	}
	return 0, fmt.Errorf("chaos: no %d free consecutive ports on %s", n, addr)
}
