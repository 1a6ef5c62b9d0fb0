package chaos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/relay-dev/relay"
	"github.com/relay-dev/relay/internal/proc"
	"github.com/relay-dev/relay/internal/testredis"
	"github.com/relay-dev/relay/matchmaker"
)

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
	rs, redisDir, err := testredis.LaunchIn(cfg.Dir)
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
