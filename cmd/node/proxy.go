package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
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
		setup: func(fs *flag.FlagSet) func(*cli) int {
			var (
				publisher = fs.Bool("publisher", false, "run a publisher proxy (fanout and notifications)")
				router    = fs.Bool("router", false, "run a router proxy (calls and casts)")
				local     = fs.Bool("local", false, "a local proxy for --host, fed by the central ones")
				ack       = fs.Bool("ack", false, "central proxy: acknowledge each message published")
				mm        = fs.String("matchmaker", "", "matchmaker URL (required)")
				host      = fs.String("host", "", "host a local proxy serves (default: this machine's hostname)")
				bind      = fs.String("bind", "127.0.0.1", "address to bind, and to advertise unless --advertise is given (0.0.0.0 needs --advertise)")
				advertise = fs.String("advertise", "", "address others reach the proxy at, registered with its ports (default: --bind)")
				ports     = fs.String("ports", "20000-29999", "port range MIN-MAX to bind in")
				ttl       = fs.Duration("ttl", 30*time.Second, "registration TTL")
				frontend  = fs.String("frontend", "", "router proxy: HOST:PORT to bind for clients (default: --bind, a port from --ports)")
				backend   = fs.String("backend", "", "router proxy: HOST:PORT to bind for servers (default: --bind, a port from --ports)")
				httpAddr  = httpFlag(fs, "/metrics, /healthz and /debug/pprof/")
				cf        curveFlags
			)
			cf.register(fs)
			return func(c *cli) int {
				if code, ok := c.noArgs(); !ok {
					return code
				}
				if *publisher == *router {
					return c.usageError("one of --publisher or --router is required")
				}
				url, err := matchmakerURL(*mm)
				if err != nil {
					return c.usageError("%v", err)
				}
				portMin, portMax, err := parsePorts(*ports)
				if err != nil {
					return c.usageError("--ports: %v", err)
				}
				if (*frontend != "" || *backend != "") && !*router {
					return c.usageError("--frontend and --backend are for --router")
				}
				if err := cf.check(); err != nil {
					return c.usageError("%v", err)
				}
				// While the proxy starts, its log is held back: one that
				// cannot start prints only the error that sums up why.
				log, held := newHeldLogger(c.handler)
				ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
				defer stop()
				opts := []proxy.Option{
					proxy.WithMatchmaker(url), proxy.WithBindAddress(*bind), proxy.WithPortRange(portMin, portMax),
					proxy.WithRegistrationTTL(*ttl), proxy.WithLogger(log), proxy.WithAdvertise(*advertise),
				}
				if *host != "" {
					opts = append(opts, proxy.WithHost(*host))
				}
				if cf.key != "" || cf.allow != "" {
					opts = append(opts, proxy.WithCurve(cf.key, cf.allow))
				}
				var p runningProxy
				if *router {
					p, err = proxy.StartRouter(ctx, append(opts, proxy.WithFrontend(*frontend), proxy.WithBackend(*backend))...)
				} else {
					p, err = proxy.StartPublisher(ctx, append(opts, proxy.WithAck(*ack), proxy.WithLocal(*local))...)
				}
				held.release(err == nil)
				if err != nil && strings.Contains(err.Error(), "bind") {
					where := fmt.Sprintf("--bind (%s must be an address of this host) and --ports (%s)", *bind, *ports)
					if *frontend != "" || *backend != "" {
						where = "--frontend and --backend (HOST:PORT, free, on an address of this host)"
					}
					err = fmt.Errorf("%w; check %s", err, where)
				}
				if err != nil {
					return c.fail(err)
				}
				log.Info("proxy running", "endpoints", p.Endpoints(), "router", *router, "local", *local, "ack", *ack)
				return c.serveProxy(ctx, p, *httpAddr, &cf, log)
			}
		},
	}
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
