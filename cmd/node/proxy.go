package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/relay-dev/relay/metrics"
	"github.com/relay-dev/relay/proxy"
)

// proxyAbout is the start of node proxy's help.
const proxyAbout = `With --router, runs a router proxy for nodes in router-proxy mode
(--router-proxy; relay.WithRouterProxy in code): calls and casts go from
clients through one of the registered router proxies to the server they
name, so connections grow as proxies x nodes instead of clients x servers.
It keeps no state but which servers are connected (they say HELLO every
second); with acks (--acks on the clients) a message whose proxy died is
resent through another and the server handles it once.

With --publisher, runs a publisher proxy for nodes in pub/sub mode (their --pubsub flag,
relay.WithPubSub in code): fanouts and notifications go from a publisher
through one proxy to every subscriber of the topic. A central proxy
(--publisher) registers in the matchmaker; publishers send through one of
the registered ones and subscribers connect to all, so any one may go away.
With --ack it acknowledges each message it published and answers
"NoSubscribers" when nobody would get it; the publisher then resends through
another proxy. A local proxy (--publisher --local --host H) subscribes to
the central ones and republishes on host H, whose nodes connect to it
instead (two-level fanout). Runs until SIGINT or SIGTERM.

A proxy's socket loop that fails is restarted in place, on the same ports,
and the proxy stays registered; only when it fails more often than its
supervisor allows does the proxy unregister and exit 1 (restart it then).

`

func proxyCommand() command {
	return command{
		name:     "proxy",
		short:    "run a router proxy (calls, casts) or a publisher proxy (fanout, notifications)",
		synopsis: "(--router | --publisher [--ack | --local --host H]) --matchmaker URL [--bind ADDR ...]",
		about:    proxyAbout + matchmakerNote + "\n" + curveNote,
		examples: `  node proxy --router --matchmaker redis://127.0.0.1:6379 --frontend 127.0.0.1:7100 --backend 127.0.0.1:7101
  node proxy --publisher --ack --matchmaker redis://127.0.0.1:6379 --bind 127.0.0.1
  node proxy --publisher --local --host h1 --matchmaker redis://127.0.0.1:6379 --bind 127.0.0.2
  node proxy --router --matchmaker redis://127.0.0.1:6379 --curve-key keys/router.key --curve-allow keys/
`,
		setup: setupOf(func() commandFlags { return &proxyFlags{} }),
	}
}

// proxyFlags are node proxy's flags.
type proxyFlags struct {
	publisher, router, local, ack                 bool
	mm, host, bind, advertise, ports, front, back string
	ttl                                           time.Duration
	httpAddr                                      *string
	cf                                            curveFlags
}

func (f *proxyFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&f.publisher, "publisher", false, "run a publisher proxy (fanout and notifications)")
	fs.BoolVar(&f.router, "router", false, "run a router proxy (calls and casts)")
	fs.BoolVar(&f.local, "local", false, "a local proxy for --host, fed by the central ones")
	fs.BoolVar(&f.ack, "ack", false, "central proxy: acknowledge each message published")
	fs.StringVar(&f.mm, "matchmaker", "", "matchmaker URL (required)")
	fs.StringVar(&f.host, "host", "", "host a local proxy serves (default: this machine's hostname)")
	fs.StringVar(&f.bind, "bind", "127.0.0.1", "address to bind, and to advertise unless --advertise is given (0.0.0.0 needs --advertise)")
	fs.StringVar(&f.advertise, "advertise", "", "address others reach the proxy at, registered with its ports (default: --bind)")
	fs.StringVar(&f.ports, "ports", "20000-29999", "port range MIN-MAX to bind in")
	fs.DurationVar(&f.ttl, "ttl", 30*time.Second, "registration TTL")
	fs.StringVar(&f.front, "frontend", "", "router proxy: HOST:PORT to bind for clients (default: --bind, a port from --ports)")
	fs.StringVar(&f.back, "backend", "", "router proxy: HOST:PORT to bind for servers (default: --bind, a port from --ports)")
	f.httpAddr = httpFlag(fs, "/metrics, /healthz and /debug/pprof/")
	f.cf.register(fs)
}

// options checks the flags and returns the options of the proxy, without
// its logger.
func (f *proxyFlags) options() ([]proxy.Option, error) {
	if f.publisher == f.router {
		return nil, errors.New("one of --publisher or --router is required")
	}
	url, err := matchmakerURL(f.mm)
	if err != nil {
		return nil, err
	}
	portMin, portMax, err := parsePorts(f.ports)
	if err != nil {
		return nil, fmt.Errorf("--ports: %v", err)
	}
	if (f.front != "" || f.back != "") && !f.router {
		return nil, errors.New("--frontend and --backend are for --router")
	}
	if err := f.cf.check(); err != nil {
		return nil, err
	}
	opts := []proxy.Option{
		proxy.WithMatchmaker(url), proxy.WithBindAddress(f.bind), proxy.WithPortRange(portMin, portMax),
		proxy.WithRegistrationTTL(f.ttl), proxy.WithAdvertise(f.advertise),
	}
	if f.host != "" {
		opts = append(opts, proxy.WithHost(f.host))
	}
	if f.cf.key != "" || f.cf.allow != "" {
		opts = append(opts, proxy.WithCurve(f.cf.key, f.cf.allow))
	}
	return opts, nil
}

// run starts the proxy and runs it until a signal or its failure.
func (f *proxyFlags) run(c *cli) int {
	if code, ok := c.noArgs(); !ok {
		return code
	}
	opts, err := f.options()
	if err != nil {
		return c.usageError("%v", err)
	}
	// While the proxy starts, its log is held back: one that
	// cannot start prints only the error that sums up why.
	log, held := newHeldLogger(c.handler)
	ctx, stop := signalContext()
	defer stop()
	opts = append(opts, proxy.WithLogger(log))
	var p runningProxy
	if f.router {
		p, err = proxy.StartRouter(ctx, append(opts, proxy.WithFrontend(f.front), proxy.WithBackend(f.back))...)
	} else {
		p, err = proxy.StartPublisher(ctx, append(opts, proxy.WithAck(f.ack), proxy.WithLocal(f.local))...)
	}
	held.release(err == nil)
	if err != nil && strings.Contains(err.Error(), "bind") {
		where := fmt.Sprintf("--bind (%s must be an address of this host) and --ports (%s)", f.bind, f.ports)
		if f.front != "" || f.back != "" {
			where = "--frontend and --backend (HOST:PORT, free, on an address of this host)"
		}
		err = fmt.Errorf("%w; check %s", err, where)
	}
	if err != nil {
		return c.fail(err)
	}
	log.Info("proxy running", "endpoints", p.Endpoints(), "router", f.router, "local", f.local, "ack", f.ack)
	return c.serveProxy(ctx, p, *f.httpAddr, &f.cf, log)
}

// runningProxy is what node proxy uses of a started proxy.
type runningProxy interface {
	Endpoints() string
	Failed() <-chan error
	ReloadAllowList() error
	Close() error
}

// serveProxy serves p's metrics on httpAddr (when set), reloads its
// allow-list on SIGHUP, and runs it until ctx ends (a signal) or p fails
// beyond its restart intensity; then it closes p and returns the exit
// code.
func (c *cli) serveProxy(ctx context.Context, p runningProxy, httpAddr string, cf *curveFlags, log *slog.Logger) int {
	var failed atomic.Bool
	if httpAddr != "" {
		m := metrics.New()
		if rp, ok := p.(*proxy.Router); ok {
			m.AddRouterProxy(rp.Endpoints(), rp)
		}
		ready := func() error {
			if failed.Load() {
				return errors.New("proxy socket loop failed")
			}
			return nil
		}
		_, stopHTTP, err := c.serveHTTP(httpAddr, metrics.Handler(metrics.NewRegistry(m), ready))
		if err != nil {
			p.Close()
			return c.usageError("%v", err)
		}
		defer stopHTTP()
	}
	defer cf.reloadOnHUP(log, p.ReloadAllowList)()
	code := 0
	select {
	case <-ctx.Done():
		log.Info("signal received; closing")
	case err := <-p.Failed():
		failed.Store(true)
		code = c.fail(fmt.Errorf("failed (restart it): %w", err))
	}
	if err := p.Close(); err != nil {
		return c.fail(err)
	}
	return code
}
