package scale

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/relay-dev/relay/internal/proc"
	"github.com/relay-dev/relay/internal/testutil"
)

// Roles of the processes in a report.
const (
	roleRouter   = "router proxy"
	roleCentral  = "publisher proxy"
	roleLocalPub = "local publisher"
	roleRedis    = "redis"
)

// proxyReady is what a proxy logs once it runs.
const proxyReady = "proxy running"

// stopGrace is how long a process has to exit after SIGTERM.
const stopGrace = 60 * time.Second

// child is a process of the run: a proxy or a host process.
type child struct {
	name, role string
	nodes      int    // host processes: the nodes it runs
	log        string // its output
	report     string // host processes: its HostReport
	p          *proc.Process
}

// launch starts the child with args, its output going to its log file.
func (c *child) launch(bin string, args ...string) error {
	out, err := os.Create(c.log)
	if err != nil {
		return fmt.Errorf("scale: %w", err)
	}
	defer out.Close() // the child has its own descriptor
	c.p, err = proc.Start(c.name, out, bin, args...)
	return err
}

// stop stops the child with SIGTERM and says how it ended if not well.
func (c *child) stop() error {
	if c.p == nil {
		return nil
	}
	if err := c.p.Stop(stopGrace); err != nil {
		return fmt.Errorf("%w (log %s:\n%s)", err, c.log, proc.Tail(c.log, 10))
	}
	return nil
}

// exited returns an error, with the end of its log, if the child has
// exited.
func (c *child) exited() error {
	if c.p != nil && c.p.Exited() {
		return fmt.Errorf("scale: %s exited (%s); log %s:\n%s", c.name, c.p.State(), c.log, proc.Tail(c.log, 15))
	}
	return nil
}

// startProxies starts the proxies of proxied mode and waits until each
// runs: Routers router proxies, Publishers central publisher proxies (with
// acks) and one local publisher proxy per host process.
func (h *harness) startProxies() error {
	cfg := &h.cfg
	var cs []*child
	var argv [][]string
	common := func(addr string) []string {
		return []string{"--matchmaker", h.rs.URL(), "--bind", addr, "--ttl", cfg.TTL.String()}
	}
	for i := range cfg.Routers {
		addr := routerAddr(i)
		ports, err := proc.FreePorts(addr, 2)
		if err != nil {
			return err
		}
		cs = append(cs, &child{name: fmt.Sprintf("router%d", i+1), role: roleRouter})
		argv = append(argv, append([]string{"proxy", "--router",
			"--frontend", net.JoinHostPort(addr, strconv.Itoa(ports[0])),
			"--backend", net.JoinHostPort(addr, strconv.Itoa(ports[1]))}, common(addr)...))
	}
	for i := range cfg.Publishers {
		cs = append(cs, &child{name: fmt.Sprintf("pub%d", i+1), role: roleCentral})
		argv = append(argv, append([]string{"proxy", "--publisher", "--ack"}, common(centralAddr(i))...))
	}
	for p := range cfg.Procs {
		cs = append(cs, &child{name: fmt.Sprintf("localpub%d", p), role: roleLocalPub})
		argv = append(argv, append([]string{"proxy", "--publisher", "--local", "--host", hostName(p)}, common(localPubAddr(p))...))
	}
	for i, c := range cs {
		c.log = filepath.Join(cfg.Dir, c.name+".log")
		if err := c.launch(cfg.NodeBin, argv[i]...); err != nil {
			return err
		}
		h.children = append(h.children, c)
	}
	for _, c := range cs {
		err := testutil.Poll(15*time.Second, func() error {
			if err := c.exited(); err != nil {
				return err
			}
			if b, _ := os.ReadFile(c.log); !strings.Contains(string(b), proxyReady) {
				return fmt.Errorf("scale: %s not running after 15s (log %s)", c.name, c.log)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	cfg.logf("%d router proxies, %d central and %d local publisher proxies running", cfg.Routers, cfg.Publishers, cfg.Procs)
	return nil
}

// startHosts writes the spec of each host process and starts them all at
// once: the registration storm.
func (h *harness) startHosts() error {
	cfg := &h.cfg
	per := cfg.Nodes / cfg.Procs
	first := 0
	for p := range cfg.Procs {
		count := per
		if p < cfg.Nodes%cfg.Procs {
			count++
		}
		c := &child{name: hostName(p), role: RoleCompute, nodes: count,
			log:    filepath.Join(cfg.Dir, hostName(p)+".log"),
			report: filepath.Join(cfg.Dir, hostName(p)+".json")}
		spec := HostSpec{Name: hostName(p), Index: p, Role: RoleCompute, First: first, Count: count, Nodes: cfg.Nodes,
			Matchmaker: h.rs.URL(), Proxied: cfg.Mode == ModeProxied, TTL: cfg.TTL, Timeout: cfg.CallTimeout,
			Parallel: cfg.Parallel, Heartbeat: cfg.Heartbeat, HeartbeatTimeout: cfg.HeartbeatTimeout, CallRate: float64(cfg.CallRate) * float64(count) / float64(cfg.Nodes), Report: c.report}
		path := filepath.Join(cfg.Dir, hostName(p)+".spec.json")
		if err := writeJSON(path, spec); err != nil {
			return fmt.Errorf("scale: %w", err)
		}
		first += count
		h.hosts = append(h.hosts, c)
		h.specs = append(h.specs, path)
	}
	for i, c := range h.hosts {
		if err := c.launch(cfg.NodeBin, "scale", "--host-spec", h.specs[i], "--log-level", "warn"); err != nil {
			return err
		}
		h.children = append(h.children, c)
	}
	return nil
}

// hostReports reads the latest report of every host process.
func (h *harness) hostReports() []HostReport {
	out := make([]HostReport, len(h.hosts))
	for i, c := range h.hosts {
		_ = readJSON(c.report, &out[i]) // not written yet: empty
	}
	return out
}

// signalHosts sends sig to every host process.
func (h *harness) signalHosts(sig syscall.Signal) {
	for _, c := range h.hosts {
		c.p.Signal(sig)
	}
}

// stopChildren stops the given children in parallel and returns what went
// wrong.
func stopChildren(cs []*child) []string {
	var (
		mu   sync.Mutex
		errs []string
		wg   sync.WaitGroup
	)
	for _, c := range cs {
		wg.Go(func() {
			if err := c.stop(); err != nil {
				mu.Lock()
				errs = append(errs, err.Error())
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errs
}
