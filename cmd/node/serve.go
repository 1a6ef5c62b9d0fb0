package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/relay-dev/relay"
	"github.com/relay-dev/relay/internal/chaos"
	"github.com/relay-dev/relay/internal/demo"
	"github.com/relay-dev/relay/matchmaker"
	"github.com/relay-dev/relay/metrics"
)

// matchmakerNote goes into the help of the commands that take --matchmaker.
const matchmakerNote = `Matchmakers: memory://NAME lives inside one process (a serve in one process
and a call in another do not find each other: "no servers for target").
Across processes use Redis, redis://[:password@]host:port[/db] or
redis+sentinel://h1:26379,h2:26379/mastername, or a static hosts file,
file:///path/hosts.json or file:relative/path.json (format:
testdata/hosts.json; topic -> ["host:port", ...], reloaded when edited).
With a hosts file a server binds the port its entry names (--ports
7001-7001), and its --host must be the entry's host: a directed call or
cast (--server) names the host field of an entry, e.g. --server 127.0.0.2
for 127.0.0.2:7001. A --server that no entry names fails at the caller
("no servers for target", with the hosts the entries name); a server whose
--host is not its entry's host refuses directed calls and drops directed
casts unseen by their sender (it warns at start). Notifications need
Redis: a hosts file lists no listeners.
`

// targetFlags are the flags that name a target.
type targetFlags struct {
	exchange, topic, server, namespace, version string
}

func (t *targetFlags) register(fs *flag.FlagSet, withServer bool) {
	fs.StringVar(&t.topic, "topic", "", "topic to serve or address (required)")
	fs.StringVar(&t.exchange, "exchange", "", "exchange of the topic (optional)")
	fs.StringVar(&t.namespace, "namespace", "", "namespace of the methods (optional)")
	fs.StringVar(&t.version, "version", "", `version "MAJOR.MINOR" (optional)`)
	if withServer {
		fs.StringVar(&t.server, "server", "", "send to this server (its --host; with a hosts file, its entry's host) only; empty: any server, round-robin")
	}
}

func (t *targetFlags) target() relay.Target {
	return relay.Target{Exchange: t.exchange, Topic: t.topic, Server: t.server, Namespace: t.namespace, Version: t.version}
}

// nodeFlags are the flags of a node that others reach: serve and listen.
type nodeFlags struct {
	matchmaker, host, bind, advertise, ports string
	dataDir                                  string
	dedupMiB                                 int
	ttl                                      time.Duration
	pubsub                                   bool
	curve                                    curveFlags
}

func (n *nodeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&n.matchmaker, "matchmaker", "", "matchmaker URL, e.g. redis://127.0.0.1:6379 (required)")
	fs.StringVar(&n.host, "host", "", "host name to advertise (default: this machine's hostname)")
	fs.StringVar(&n.bind, "bind", "127.0.0.1", "IPv4 address or interface name (eth0, lo) to bind, and to advertise unless --advertise is given (an interface: its address); 0.0.0.0 needs --advertise")
	fs.StringVar(&n.advertise, "advertise", "", "address others reach this node at, registered with its port (default: --bind)")
	fs.StringVar(&n.ports, "ports", "20000-29999", "port range MIN-MAX to bind in")
	n.curve.register(fs)
	fs.DurationVar(&n.ttl, "ttl", 30*time.Second, "registration TTL: a node that stops renewing (every TTL/3) is forgotten after it")
	fs.BoolVar(&n.pubsub, "pubsub", false, "receive fanouts and notifications through publisher proxies (node proxy --publisher)")
	fs.IntVar(&n.dedupMiB, "dedup-mib", 64, "MiB of answers kept to answer resent calls again (--acks callers); beyond it the oldest go, and a resend of such a call gets the error ReplyUnavailable instead of a second run; 0: no bound. serve also sets Go's soft memory limit to this plus 36 MiB (the handlers' queue, 16 MiB, and 20 MiB of its own), unless GOMEMLIMIT is set")
	fs.StringVar(&n.dataDir, "data-dir", "", "directory that keeps, across restarts, the msg_ids of the requests with acks this node handled (a resend is answered, not run again) and its own unacknowledged casts with acks (default: memory only, forgotten at exit)")
}

// options checks the flags and returns the options of the node.
func (n *nodeFlags) options() ([]relay.Option, error) {
	mm, err := matchmakerURL(n.matchmaker)
	if err != nil {
		return nil, err
	}
	min, max, err := parsePorts(n.ports)
	if err != nil {
		return nil, fmt.Errorf("--ports: %v", err)
	}
	if err := n.curve.check(); err != nil {
		return nil, err
	}
	opts := []relay.Option{relay.WithMatchmaker(mm), relay.WithBindAddress(n.bind), relay.WithAdvertise(n.advertise),
		relay.WithPortRange(min, max), relay.WithRegistrationTTL(n.ttl), relay.WithPubSub(n.pubsub)}
	if n.host != "" {
		opts = append(opts, relay.WithHost(n.host))
	}
	if n.dataDir != "" {
		opts = append(opts, relay.WithDataDir(n.dataDir))
	}
	if n.dedupMiB < 0 {
		return nil, fmt.Errorf("--dedup-mib: must be 0 (no bound) or more, got %d", n.dedupMiB)
	}
	opts = append(opts, relay.WithDedupBytes(n.dedupMiB<<20))
	return append(opts, n.curve.options()...), nil
}

// memoryHeadroom is what a serving node needs beside the answers it keeps
// for resends and the requests queued for its handlers: its own buffers
// and the requests in flight. A soft limit below what the node holds alive
// makes the garbage collector run without pause (the server slows, its
// clients resend, it holds more): a limit of the answers plus 12 MiB did
// that under load, and so, once, did the answers plus 20 MiB, with the
// handlers' queue (16 MiB) full.
const memoryHeadroom = 20 << 20

// gcPercent is node serve's GOGC while its memory is limited (limitMemory).
const gcPercent = 25

// limitMemory sets Go's soft memory limit to the answers the node keeps
// (--dedup-mib) plus the bound of its handlers' queue
// (relay.DefaultHandlerQueueBytes) plus memoryHeadroom, unless GOMEMLIMIT is set (GOMEMLIMIT=off
// turns it off) or the answers are not bounded: the garbage collector then
// works harder near the bound instead of letting the heap double (GOGC)
// past it, so that RSS stays near the bound plus a constant.
func (n *nodeFlags) limitMemory() {
	if _, set := os.LookupEnv("GOMEMLIMIT"); set || n.dedupMiB == 0 {
		return
	}
	debug.SetMemoryLimit(int64(n.dedupMiB)<<20 + relay.DefaultHandlerQueueBytes + memoryHeadroom)
	if _, set := os.LookupEnv("GOGC"); !set {
		// The heap may grow by a quarter of its live part, not double:
		// with the answers kept (16 MiB, say) most of what is live, that
		// keeps RSS near the bound (64 KiB echo at 200/s: 61 MiB, as with
		// the limit at the answers plus 20 MiB; GOGC 50: 68-72 MiB).
		debug.SetGCPercent(gcPercent)
	}
}

// startNode starts a node that logs to stderr and runs until SIGINT or
// SIGTERM (ctx). While it starts, its log is held back: a node that cannot
// start prints only the error that sums up why (see heldLog).
func (c *cli) startNode(opts ...relay.Option) (ctx context.Context, stop func(), node *relay.Node, log *slog.Logger, err error) {
	log, held := newHeldLogger(c.handler)
	ctx, stop = signalContext()
	node, err = relay.Start(ctx, append(opts, relay.WithLogger(log))...)
	held.release(err == nil)
	if err != nil {
		stop()
		return nil, nil, nil, nil, err
	}
	return ctx, stop, node, log, nil
}

// serveAbout is the start of node serve's help.
const serveAbout = `Starts a node that serves the demo endpoint (methods add, subtract, append,
sleep, get, echo) on the topic, logs what it serves and its endpoint to
stderr, and runs until SIGINT or SIGTERM, then closes the node.

Servers always acknowledge a call or cast that asks for it (a client's
--acks), once its handler has returned, and handle its msg_id once; with
--data-dir that holds across a crash and restart of the server too.

`

func serveCommand() command {
	return command{
		name:     "serve",
		short:    "serve the demo endpoint on a topic until interrupted",
		synopsis: "--matchmaker URL --topic T [--host NAME --bind ADDR ...]",
		about:    serveAbout + matchmakerNote + "\n" + curveNote,
		examples: `  node serve --matchmaker redis://127.0.0.1:6379 --host alpha --topic compute
  node serve --matchmaker redis://127.0.0.1:6379 --host alpha --bind 10.0.0.5 --topic compute \
      --namespace calc --version 1.2 --ports 21000-21099 --ttl 10s
  node serve --config testdata/node.yaml
  node serve --matchmaker redis://127.0.0.1:6379 --host alpha --topic compute \
      --curve-key keys/alpha.key --curve-allow keys/
  node serve --matchmaker redis://127.0.0.1:6379 --host alpha --topic compute --bind 0.0.0.0 --advertise 10.0.0.5
`,
		setup: setupOf(func() commandFlags { return &serveFlags{} }),
	}
}

// serveFlags are node serve's flags.
type serveFlags struct {
	tf           targetFlags
	nf           nodeFlags
	router, acks bool
	httpAddr     *string
	journal      string
}

func (f *serveFlags) register(fs *flag.FlagSet) {
	f.tf.register(fs, false)
	f.nf.register(fs)
	fs.BoolVar(&f.router, "router-proxy", false, "take calls and casts through router proxies (node proxy --router); clients need it too")
	fs.BoolVar(&f.acks, "acks", false, "only for the calls and casts this node sends itself (serve sends none): servers always acknowledge what asks for it")
	f.httpAddr = httpFlag(fs, "/metrics, /healthz and /debug/pprof/")
	fs.StringVar(&f.journal, "journal", "", "also serve node chaos's methods (chaos_apply, chaos_kill) and its notifications, appending what they apply to this file (node chaos sets it)")
}

// run starts the node, serves the demo endpoint (and with --journal the
// chaos harness's) until a signal, and closes the node.
func (f *serveFlags) run(c *cli) int {
	opts, code, ok := c.nodeOptions(&f.nf)
	if !ok {
		return code
	}
	if f.tf.topic == "" {
		return c.usageError("--topic is required")
	}
	f.nf.limitMemory()
	m := metrics.New()
	opts = append(opts, m.Options()...)
	ctx, stop, node, log, err := c.startNode(append(opts, relay.WithRouterProxy(f.router), relay.WithAcks(f.acks))...)
	if err != nil {
		return c.fail(err)
	}
	defer stop()
	m.AddNode(node)
	var serving atomic.Bool
	if *f.httpAddr != "" {
		stopHTTP, code, ok := c.serveNodeHTTP(*f.httpAddr, node, m, func() error {
			if !serving.Load() {
				return fmt.Errorf("not serving %s yet", f.tf.target())
			}
			return nil
		})
		if !ok {
			return code
		}
		defer stopHTTP()
	}
	defer f.nf.curve.reloadOnHUP(log, node.ReloadAllowList)()
	srv, err := node.Serve(f.tf.target())
	if err != nil {
		node.Close()
		return c.fail(err)
	}
	(&demo.Endpoint{Host: node.Host()}).Register(srv)
	var harness *chaos.Endpoint
	if f.journal != "" {
		if harness, err = chaos.Serve(node, srv, f.journal); err != nil {
			node.Close()
			return c.fail(err)
		}
	}
	serving.Store(true)
	log.Info("serving demo endpoint", "target", srv.Target().String(), "endpoint", node.Endpoint(),
		"methods", "add,subtract,append,sleep,get,echo", "matchmaker", matchmaker.Redact(f.nf.matchmaker))
	waitSignal(ctx, log)
	err = node.Close()
	if harness != nil {
		err = errors.Join(err, harness.Close())
	}
	if err != nil {
		return c.fail(fmt.Errorf("close: %w", err))
	}
	return 0
}

// serveNodeHTTP serves the node's metrics, health and profiles on addr;
// the node is ready once serving() and node.Ready() are both nil. When not
// ok, it has closed the node and code is the exit code.
func (c *cli) serveNodeHTTP(addr string, node *relay.Node, m *metrics.Metrics, serving func() error) (stop func(), code int, ok bool) {
	ready := func() error {
		if err := serving(); err != nil {
			return err
		}
		return node.Ready()
	}
	bound, stop, err := c.serveHTTP(addr, metrics.Handler(metrics.NewRegistry(m), ready))
	if err != nil {
		node.Close()
		return nil, c.usageError("%v", err), false
	}
	node.AddInfo("http", func() any { return bound })
	return stop, 0, true
}

// nodeOptions checks that the command got no positional arguments and
// the node's flags, and returns its options; when not ok, code is the
// exit code of the usage error.
func (c *cli) nodeOptions(nf *nodeFlags) (opts []relay.Option, code int, ok bool) {
	if code, ok := c.noArgs(); !ok {
		return nil, code, false
	}
	opts, err := nf.options()
	if err != nil {
		return nil, c.usageError("%v", err), false
	}
	return opts, 0, true
}

// waitSignal waits until ctx ends (SIGINT or SIGTERM) and logs that the
// command closes.
func waitSignal(ctx context.Context, log *slog.Logger) {
	<-ctx.Done()
	log.Info("signal received; closing")
}

// parsePorts parses "MIN-MAX".
func parsePorts(s string) (int, int, error) {
	lo, hi, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, fmt.Errorf("want MIN-MAX, got %q", s)
	}
	min, err1 := strconv.Atoi(lo)
	max, err2 := strconv.Atoi(hi)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("want MIN-MAX with integer ports, got %q", s)
	}
	return min, max, nil
}
