package scale

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/relay-dev/relay/internal/proc"
	"github.com/relay-dev/relay/internal/testredis"
	"github.com/relay-dev/relay/internal/testutil"
	"github.com/relay-dev/relay/matchmaker"
)

// drainMargin is how long after the deadline of the last messages sent
// (a call timeout after the load) the run waits for them to arrive.
const drainMargin = time.Second

// unreadWait is how long after the last message of the load was sent the
// host processes are stopped: longer than a node keeps a one-way message
// it sent as possibly unread (a second), so that closing the nodes does
// not report as possibly lost what they have read.
const unreadWait = 1500 * time.Millisecond

// harness is one run.
type harness struct {
	cfg      Config
	rs       *testredis.Server
	children []*child // every process started, proxies first
	hosts    []*child // the host processes
	specs    []string // their spec files
	control  *Host
	logFile  *os.File
	observer matchmaker.Matchmaker
}

// Run starts a redis-server, the proxies (proxied mode), the control plane
// (in this process) and cfg.Procs host processes running cfg.Nodes compute
// nodes between them, all at once; measures how long until every compute
// is registered and answers a call (the registration storm); drives the
// mixed load for cfg.Duration, measuring what each process holds; and
// returns the report. It stops every process it started before it
// returns, also on error or when ctx ends.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	var err error
	if cfg.Dir, err = testredis.RunDir("scale", cfg.Dir, cfg.validate); err != nil {
		return nil, err
	}
	h := &harness{cfg: cfg}
	defer h.teardown()
	if err := h.setUp(); err != nil {
		return nil, err
	}
	rep := newReport(&h.cfg)
	rep.LoadAverage[0] = proc.LoadAverage()
	if err := h.storm(ctx, rep); err != nil {
		return nil, err
	}
	if err := h.load(ctx, rep); err != nil {
		return nil, err
	}
	rep.LoadAverage[1], rep.CPUPressure = proc.LoadAverage(), cpuPressure()
	return rep, nil
}

// setUp checks the addresses and starts Redis, the proxies and the
// control plane.
func (h *harness) setUp() error {
	cfg := &h.cfg
	cfg.logf("scale: %d nodes in %d processes, %s mode; logs and reports in %s", cfg.Nodes, cfg.Procs, cfg.Mode, cfg.Dir)
	addrs := []string{controlAddr(0), computeAddr(cfg.Procs-1, (cfg.Nodes+cfg.Procs-1)/cfg.Procs-1)}
	if cfg.Mode == ModeProxied {
		addrs = append(addrs, routerAddr(0), centralAddr(0), localPubAddr(cfg.Procs-1))
	}
	if err := proc.CheckLoopback(addrs...); err != nil {
		return fmt.Errorf("scale: %w", err)
	}
	rs, _, err := testredis.LaunchIn(cfg.Dir)
	if err != nil {
		return fmt.Errorf("scale: %w", err)
	}
	h.rs = rs
	if h.observer, err = matchmaker.Open(rs.URL()); err != nil {
		return fmt.Errorf("scale: %w", err)
	}
	if cfg.Mode == ModeProxied {
		if err := h.startProxies(); err != nil {
			return err
		}
	}
	f, err := os.Create(filepath.Join(cfg.Dir, "control.log"))
	if err != nil {
		return fmt.Errorf("scale: %w", err)
	}
	h.logFile = f
	spec := HostSpec{Name: "scale-control", Role: RoleControl, Nodes: cfg.Nodes,
		Conductors: cfg.Conductors, Schedulers: cfg.Schedulers, Matchmaker: rs.URL(), Proxied: cfg.Mode == ModeProxied,
		TTL: cfg.TTL, Timeout: cfg.CallTimeout, Parallel: cfg.Parallel,
		Heartbeat: cfg.Heartbeat, HeartbeatTimeout: cfg.HeartbeatTimeout,
		APIRate: float64(cfg.APIRate), CastRate: float64(cfg.CastRate), FanoutEvery: cfg.FanoutEvery,
		ChurnEvery: cfg.ChurnEvery}
	log := slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelWarn}))
	sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h.control, err = StartHost(sctx, spec, log)
	if err != nil {
		return err
	}
	if rep := h.control.Report(); !rep.Ready {
		return fmt.Errorf("scale: control plane: %v", rep.StartErrors)
	}
	return nil
}

// storm starts the host processes together and measures until every
// compute is registered, then answers a directed call, then gets a fanout
// and a notification.
func (h *harness) storm(ctx context.Context, rep *Report) error {
	cfg := &h.cfg
	at, err := h.markStart()
	if err != nil {
		return err
	}
	peak := h.watchRedis()
	start := time.Now()
	if err := h.startHosts(); err != nil {
		peak()
		return err
	}
	cfg.logf("storm: %d host processes launched", cfg.Procs)
	st := &rep.Storm
	err = h.waitHosts(ctx, start, st)
	if err == nil {
		err = h.waitRegistered(ctx, start, st)
	}
	st.PeakOpsPerSec = peak()
	st.ListenOverflows = listenOverflows() - at.overflows
	after, rerr := readRedis(h.rs)
	if err != nil {
		return err
	}
	if rerr != nil {
		return rerr
	}
	st.RedisCommands = after.Commands - at.redis.Commands
	st.Published = after.Published - at.redis.Published
	if st.Registered > 0 {
		st.OpsPerSec = float64(st.RedisCommands) / st.Registered.Seconds()
	}
	if err := h.sweep(ctx, start, st); err != nil {
		return err
	}
	h.settle(ctx, start, st)
	return nil
}

// waitHosts waits until every host process has started its nodes.
func (h *harness) waitHosts(ctx context.Context, start time.Time, st *StormReport) error {
	cfg := &h.cfg
	err := poll(ctx, cfg.StartTimeout-time.Since(start), func() error {
		for i, r := range h.hostReports() {
			if err := h.hosts[i].exited(); err != nil {
				return err
			}
			if r.Name == "" {
				return fmt.Errorf("%s has not started its nodes", h.hosts[i].name)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("scale: storm: %w", err)
	}
	st.Started = time.Since(start)
	for _, r := range h.hostReports() {
		st.NodesStarted += r.Nodes
		st.StartErrors = append(st.StartErrors, r.StartErrors...)
		st.SlowestHost = max(st.SlowestHost, r.StartTook)
	}
	cfg.logf("storm: %d of %d nodes started after %v", st.NodesStarted, cfg.Nodes, st.Started.Round(time.Millisecond))
	if st.NodesStarted < cfg.Nodes {
		return fmt.Errorf("scale: storm: %d of %d nodes started; the first failures: %v", st.NodesStarted, cfg.Nodes, st.StartErrors)
	}
	return nil
}

// waitRegistered waits until the compute topic lists every compute.
func (h *harness) waitRegistered(ctx context.Context, start time.Time, st *StormReport) error {
	cfg := &h.cfg
	key := matchmaker.Key{Topic: TopicCompute}
	err := poll(ctx, cfg.StartTimeout-time.Since(start), func() error {
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		got, err := h.observer.Lookup(lctx, key)
		if err != nil {
			return err
		}
		if len(got) < cfg.Nodes {
			return fmt.Errorf("%d of %d computes registered", len(got), cfg.Nodes)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("scale: storm: %w", err)
	}
	st.Registered = time.Since(start)
	cfg.logf("storm: every compute registered after %v", st.Registered.Round(time.Millisecond))
	return nil
}

// sweep waits until the api has called every compute, directed.
func (h *harness) sweep(ctx context.Context, start time.Time, st *StormReport) error {
	cfg := &h.cfg
	err := poll(ctx, cfg.StartTimeout-time.Since(start), func() error { return h.control.sweep(ctx, 64) })
	if err != nil {
		return fmt.Errorf("scale: storm: not every compute answers a directed call: %w", err)
	}
	st.Reachable = time.Since(start)
	cfg.logf("storm: every compute answered a directed call after %v", st.Reachable.Round(time.Millisecond))
	return nil
}

// settle sends probe fanouts and notifications, once a second, until one
// of each reached every compute (subscriptions, in proxied mode, take a
// while to reach the proxies). It gives up after StartTimeout and notes
// it.
func (h *harness) settle(ctx context.Context, start time.Time, st *StormReport) {
	cfg := &h.cfg
	err := poll(ctx, cfg.StartTimeout-time.Since(start), func() error {
		n := -h.control.probe.Add(1)
		h.control.broadcast(ctx, n)
		return testutil.Poll(time.Second, func() error {
			f, no := deliveredProbes(h.hostReports())
			if f < cfg.Nodes || no < cfg.Nodes {
				return fmt.Errorf("the best probe fanout reached %d, notification %d of %d computes", f, no, cfg.Nodes)
			}
			return nil
		})
	})
	if err != nil {
		st.Notes = append(st.Notes, fmt.Sprintf("fanout and notifications did not reach every compute within the start timeout: %v", err))
		return
	}
	st.Settled = time.Since(start)
	cfg.logf("storm: a fanout and a notification reached every compute after %v", st.Settled.Round(time.Millisecond))
}

// deliveredProbes returns the most computes any one probe fanout, and any
// one probe notification, reached.
func deliveredProbes(reps []HostReport) (fanout, note int) {
	sum := func(pick func(HostReport) map[string]Delivery) int {
		per := map[string]int{}
		best := 0
		for _, r := range reps {
			for k, d := range pick(r) {
				if len(k) > 0 && k[0] == '-' {
					per[k] += d.N
					best = max(best, per[k])
				}
			}
		}
		return best
	}
	return sum(func(r HostReport) map[string]Delivery { return r.Fanouts }),
		sum(func(r HostReport) map[string]Delivery { return r.Notes })
}

// watchRedis samples Redis's command count every 250 ms until the
// returned function is called, which returns the highest rate seen.
func (h *harness) watchRedis() (stop func() float64) {
	done := make(chan struct{})
	var peak float64
	var wg sync.WaitGroup
	wg.Go(func() { // ends when stop is called
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		last, err := readRedis(h.rs)
		valid := err == nil
		lastAt := time.Now()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			s, err := readRedis(h.rs)
			if err != nil {
				continue
			}
			now := time.Now()
			if valid {
				peak = max(peak, float64(s.Commands-last.Commands)/now.Sub(lastAt).Seconds())
			}
			last, lastAt, valid = s, now, true
		}
	})
	return func() float64 {
		close(done)
		wg.Wait()
		return peak
	}
}

// teardown stops whatever still runs: the host processes, the control
// plane, the proxies, Redis.
func (h *harness) teardown() {
	var hosts []*child
	for _, c := range h.children {
		if c.role == RoleCompute {
			hosts = append(hosts, c)
		}
	}
	stopChildren(hosts)
	if h.control != nil {
		h.control.Close()
	}
	stopChildren(h.children)
	if h.observer != nil {
		h.observer.Close()
	}
	if h.rs != nil {
		h.rs.Stop()
	}
	if h.logFile != nil {
		h.logFile.Close()
	}
}

// poll calls f until it returns nil, d passes or ctx ends, and returns
// f's last error.
func poll(ctx context.Context, d time.Duration, f func() error) error {
	deadline := time.Now().Add(d)
	wait := 10 * time.Millisecond
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (then: %v)", ctx.Err(), err)
		case <-time.After(wait):
		}
		wait = min(2*wait, 250*time.Millisecond)
	}
}
