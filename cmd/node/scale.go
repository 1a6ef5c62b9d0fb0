package main

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/relay-dev/relay/internal/scale"
)

// scaleAbout is node scale's help.
const scaleAbout = `Starts a cloud on this machine: a redis-server (the matchmaker), --nodes
compute nodes spread over --procs host processes (each node on a loopback
address of its own, 127.(100+P).x.y, all the nodes of a process sharing its
ZeroMQ context and actor system), and in this process the control plane:
--conductors conductor servers, --schedulers schedulers and an api node
(127.98.0.x). In proxied mode also --routers router proxies, --publishers
central publisher proxies and one local publisher proxy per host process
(two-level fanout); calls and casts then go through the router proxies,
fanouts and notifications through the publishers.

Every host process is launched at once: the registration storm. The run
measures how long until every node has started, until the compute topic
lists every compute in Redis, until every compute answers a directed call,
and until a fanout and a notification reach every compute, with the Redis
commands per second meanwhile (average and peak).

Then, for --duration, the load: computes call the conductors (--call-rate a
second, all together), the api calls random computes (--api-rate), the
schedulers cast to random computes (--cast-rate), and every --fanout-every a
scheduler fans out to every compute and the api sends a notification that
every compute listens to (each in a listener pool of its own); every
--churn-every a new conductor joins and the previous one leaves (the run
measures how long until the first call reaches a joiner, and until calls
stop reaching a leaver, which refuses them). It prints
the calls' p50/p99 and failures, the deliveries (lost, time of the last
receiver), Redis commands per second, memory and clients, and for every
process its fds, threads, RSS and established TCP sockets (from /proc),
with the ZeroMQ connections between processes and those to Redis.

With --curve the run is repeated for each N of the list in each mode of
--mode (e.g. --mode direct,proxied), a line per run is printed; with --json
the runs can be drawn (connections, memory, latency and the storm against
N, into a PNG) by go run ./cmd/scaleplot -o FILE.png scale.json.
docs/SCALE.md has the figures of this machine and what breaks first.

Needs redis-server (make deps). Progress goes to stderr, the report to
stdout. Exit code 0 when the run completed, 1 when it could not run.
`

func scaleCommand() command {
	return command{
		name:     "scale",
		short:    "start N nodes (default 1,000) over a few processes and measure what they cost",
		synopsis: "[--nodes N --procs P --mode direct|proxied --duration D] [--curve 10,100,1000] [--json]",
		about:    scaleAbout,
		examples: `  node scale                                    1,000 nodes in 4 processes, direct, 30 s of load
  node scale --nodes 200 --procs 2 --duration 20s --mode proxied
  node scale --heartbeat 10s --heartbeat-timeout 30s     what 1,000 nodes need on a busy 2-core machine
  node scale --curve 10,100,1000 --mode direct,proxied --json > scale.json
  go run ./cmd/scaleplot -o docs/scale.png scale.json
  make scale
`,
		setup: setupOf(func() commandFlags { return &scaleFlags{} }),
	}
}

// scaleFlags are node scale's flags.
type scaleFlags struct {
	cfg                                  scale.Config
	mode, curve, plotPath, dir, hostSpec string
	asJSON                               bool
}

func (f *scaleFlags) register(fs *flag.FlagSet) {
	def := scale.DefaultConfig()
	cfg := &f.cfg
	*cfg = def
	fs.StringVar(&f.mode, "mode", def.Mode, "topology: direct or proxied (with --curve: a list, direct,proxied)")
	fs.IntVar(&cfg.Nodes, "nodes", def.Nodes, "compute nodes (N)")
	fs.IntVar(&cfg.Procs, "procs", def.Procs, "host processes the compute nodes are spread over")
	fs.IntVar(&cfg.Conductors, "conductors", def.Conductors, "conductor servers (control plane, in this process)")
	fs.IntVar(&cfg.Schedulers, "schedulers", def.Schedulers, "schedulers (control plane, in this process)")
	fs.IntVar(&cfg.Routers, "routers", def.Routers, "router proxy processes (proxied mode)")
	fs.IntVar(&cfg.Publishers, "publishers", def.Publishers, "central publisher proxy processes (proxied mode; plus one local per host process)")
	fs.DurationVar(&cfg.Duration, "duration", def.Duration, "how long the load lasts")
	fs.IntVar(&cfg.CallRate, "call-rate", def.CallRate, "compute → conductor calls per second, all computes together")
	fs.IntVar(&cfg.APIRate, "api-rate", def.APIRate, "api → compute directed calls per second")
	fs.IntVar(&cfg.CastRate, "cast-rate", def.CastRate, "scheduler → compute directed casts per second")
	fs.DurationVar(&cfg.FanoutEvery, "fanout-every", def.FanoutEvery, "period of the fanout and the notification to every compute")
	fs.DurationVar(&cfg.ChurnEvery, "churn-every", def.ChurnEvery, "during the load a conductor joins, and the previous one leaves, this often (0: no churn)")
	fs.DurationVar(&cfg.StartTimeout, "start-timeout", def.StartTimeout, "bound of the registration storm (launch until every compute answers)")
	fs.DurationVar(&cfg.TTL, "ttl", def.TTL, "registration TTL of every node and proxy")
	fs.DurationVar(&cfg.CallTimeout, "call-timeout", def.CallTimeout, "deadline of each call, cast, fanout and notification")
	fs.IntVar(&cfg.Parallel, "parallel", def.Parallel, "nodes a host process starts at once")
	fs.DurationVar(&cfg.Heartbeat, "heartbeat", def.Heartbeat, "ZMTP heartbeat interval of every node (relay.WithHeartbeat)")
	fs.DurationVar(&cfg.HeartbeatTimeout, "heartbeat-timeout", def.HeartbeatTimeout, "a connection silent this long is closed")
	fs.StringVar(&f.curve, "curve", "", "node counts to run one after the other, e.g. 10,100,1000")
	fs.StringVar(&f.plotPath, "plot", "", "removed: draw the curve's JSON with go run ./cmd/scaleplot -o FILE scale.json")
	fs.StringVar(&f.dir, "dir", "", "directory for logs and reports, kept (default: a temporary one, removed after a run that completed)")
	fs.BoolVar(&f.asJSON, "json", false, "print the report (with --curve: the list of reports) as JSON")
	fs.StringVar(&f.hostSpec, "host-spec", "", "internal: run one host process of a scale run, as the JSON file says")
}

// run runs one scale run, a curve of them, or (--host-spec) one host
// process of a run.
func (f *scaleFlags) run(c *cli) int {
	if code, ok := c.noArgs(); !ok {
		return code
	}
	if f.hostSpec != "" {
		return c.scaleHost(f.hostSpec)
	}
	modes, err := scale.ParseModes("mode", f.mode)
	if err != nil {
		return c.usageError("%s", strings.TrimPrefix(err.Error(), "scale: "))
	}
	if len(modes) > 1 && f.curve == "" {
		return c.usageError("--mode %q: more than one mode needs --curve", f.mode)
	}
	if f.plotPath != "" {
		return c.usageError("--plot %s: node scale draws no plots any more (that kept gonum/plot out of every node process); run the curve with --json > scale.json, then: go run ./cmd/scaleplot -o %s scale.json", f.plotPath, f.plotPath)
	}
	bin, err := nodeBinary()
	if err != nil {
		return c.fail(err)
	}
	cfg := f.cfg
	cfg.Mode, cfg.NodeBin, cfg.Dir, cfg.Log = modes[0], bin, f.dir, c.stderr
	ctx, stop := signalContext()
	defer stop()
	if f.curve != "" {
		return c.scaleCurve(ctx, cfg, f.curve, modes, f.asJSON)
	}
	rep, err := scale.Run(ctx, cfg)
	if err != nil {
		return c.scaleFailed(err)
	}
	if f.dir == "" {
		removeRunDir(&rep.Dir)
	}
	return c.report(f.asJSON, rep, rep.Write)
}

// scaleCurve runs the curve and prints it.
func (c *cli) scaleCurve(ctx context.Context, cfg scale.Config, list string, modes []string, asJSON bool) int {
	ns, err := scale.ParseList("curve", list)
	if err != nil {
		return c.usageError("%s", strings.TrimPrefix(err.Error(), "scale: "))
	}
	reps, err := scale.Curve(ctx, cfg, ns, modes)
	if len(reps) > 0 {
		scale.WriteCurve(c.stderr, reps)
		if asJSON {
			c.printJSON(reps)
		} else {
			scale.WriteCurve(c.stdout, reps)
		}
	}
	if err != nil {
		return c.scaleFailed(err)
	}
	return 0
}

// scaleFailed prints a run's error, a bad flag as a usage error.
func (c *cli) scaleFailed(err error) int {
	if msg, ok := strings.CutPrefix(err.Error(), "scale: --"); ok {
		return c.usageError("--%s", msg)
	}
	return c.fail(err)
}

// report prints a run's report rep as JSON, or else with write; it
// returns the exit code.
func (c *cli) report(asJSON bool, rep any, write func(io.Writer)) int {
	if asJSON {
		return c.printJSON(rep)
	}
	write(c.stdout)
	return 0
}

// printJSON prints v as indented JSON.
func (c *cli) printJSON(v any) int {
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return c.fail(err)
	}
	return 0
}

// scaleHost runs one host process of a scale run: the first SIGUSR1
// begins the load, the second stops it, SIGTERM or SIGINT ends the
// process.
func (c *cli) scaleHost(specPath string) int {
	spec, err := scale.ReadSpec(specPath)
	if err != nil {
		return c.usageError("--host-spec: %v", err)
	}
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	ctx, stop := signalContext()
	defer stop()
	begin, end := make(chan struct{}), make(chan struct{})
	go func() { // ends at the second SIGUSR1 or when the host ends
		for _, ch := range []chan struct{}{begin, end} {
			select {
			case <-usr1:
				close(ch)
			case <-ctx.Done():
				return
			}
		}
	}()
	if err := scale.ServeHost(ctx, spec, begin, end, c.logger()); err != nil {
		return c.fail(err)
	}
	return 0
}
