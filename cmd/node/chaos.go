package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"

	"github.com/relay-dev/relay/internal/chaos"
)

// exitViolated is chaos --check's exit code when an invariant did not hold.
const exitViolated = 3

// chaosAbout is node chaos's help.
const chaosAbout = `Starts a cluster of real processes on loopback addresses: a redis-server on
a free port, --servers node serve processes (127.0.0.21, .22, ...) and, in
router or pubsub mode, --proxies node proxy processes (127.0.0.41, ...).
Client nodes inside this process (127.0.0.20) send mixed load for
--duration: calls and casts with and without acks, fanouts and
notifications, each with a key of its own. Meanwhile, at times drawn from
--seed, it kills actors inside the nodes, kills servers and proxies with
kill -9 (and starts them again), and kills Redis (it comes back empty) or
pauses it. Each server appends what its handlers start and apply to a
journal file (fsync'd), so the count survives kill -9.

It then prints: the faults; calls issued / ok / typed errors / untyped /
unresolved / late; one-way messages sent / accepted / applied / lost
(reported undelivered to the sender, at a kill, or silent) / handled twice; file descriptors,
goroutines and RSS of every process at the start and the end; the nodes'
counters. docs/RELIABILITY.md explains each column. The same --seed (and
flags) gives the same faults at the same times; the load's timing varies.

Needs redis-server (make deps). Progress goes to stderr, the report to
stdout. Exit code 0 when the run completed (with --check: and the
invariants held: no call unresolved or late, no process crashed), 1 when
it could not run, 3 with --check when an invariant did not hold.
`

func chaosCommand() command {
	return command{
		name:     "chaos",
		short:    "run a cluster under load, kill its parts at random, and count what was lost",
		synopsis: "[--mode direct|router|pubsub] [--seed N] [--duration D] [--json] [--check]",
		about:    chaosAbout,
		examples: `  node chaos                                   60 s, direct mode, a random seed
  node chaos --mode router --seed 42 --duration 30s
  node chaos --mode pubsub --json > chaos.json
  node chaos --serve-arg=--data-dir={dir}      each server with a data directory of its own
  make chaos
`,
		setup: setupOf(func() commandFlags { return &chaosFlags{} }),
	}
}

// chaosFlags are node chaos's flags.
type chaosFlags struct {
	cfg           chaos.Config
	serveArgs     argsFlag
	dir           string
	asJSON, check bool
}

func (f *chaosFlags) register(fs *flag.FlagSet) {
	def := chaos.DefaultConfig()
	cfg := &f.cfg
	*cfg = def
	fs.StringVar(&cfg.Mode, "mode", def.Mode, "topology: "+strings.Join(chaos.Modes, ", ")+" (router: calls and casts through router proxies; pubsub: fanouts and notifications through publisher proxies)")
	fs.Int64Var(&cfg.Seed, "seed", 0, "seed of the faults and the load's choices (0: a random one, printed)")
	fs.DurationVar(&cfg.Duration, "duration", def.Duration, "how long the load and the faults last")
	fs.IntVar(&cfg.Servers, "servers", def.Servers, "node serve processes")
	fs.IntVar(&cfg.Proxies, "proxies", def.Proxies, "proxy processes in router and pubsub modes")
	fs.IntVar(&cfg.Rate, "rate", def.Rate, "messages per second, all kinds together")
	fs.IntVar(&cfg.Workers, "workers", def.Workers, "goroutines sending the load (a call holds one until it ends)")
	fs.DurationVar(&cfg.Work, "work", def.Work, "a handler works up to this long")
	fs.DurationVar(&cfg.CallTimeout, "call-timeout", def.CallTimeout, "deadline of each call")
	fs.DurationVar(&cfg.CastTimeout, "cast-timeout", def.CastTimeout, "deadline of each cast, fanout and notification")
	fs.DurationVar(&cfg.LateAfter, "late-after", def.LateAfter, "a call that ends later than this past its deadline is late")
	fs.DurationVar(&cfg.TTL, "ttl", def.TTL, "registration TTL of the servers and proxies")
	fs.DurationVar(&cfg.MeanGap, "mean-gap", def.MeanGap, "mean time between two faults")
	fs.BoolVar(&cfg.NewPorts, "new-ports", false, "restart a killed server on a new port (default: its old one, where resends find it)")
	fs.Var(&f.serveArgs, "serve-arg", "an argument added to every node serve, {host} and {dir} replaced by the server's name and a directory of its own; repeat it")
	fs.StringVar(&f.dir, "dir", "", "directory for the journals and logs, kept (default: a temporary one, removed unless an invariant failed)")
	fs.BoolVar(&f.asJSON, "json", false, "print the report as JSON")
	fs.BoolVar(&f.check, "check", false, fmt.Sprintf("exit with code %d when an invariant did not hold", exitViolated))
}

// run runs the chaos harness and prints its report.
func (f *chaosFlags) run(c *cli) int {
	if code, ok := c.noArgs(); !ok {
		return code
	}
	bin, err := nodeBinary()
	if err != nil {
		return c.fail(err)
	}
	cfg := f.cfg
	cfg.NodeBin, cfg.ServeArgs, cfg.Log, cfg.Dir = bin, f.serveArgs, c.stderr, f.dir
	if cfg.Seed == 0 {
		cfg.Seed = rand.Int64N(1<<31) + 1
	}
	fmt.Fprintf(c.stderr, "node chaos: seed %d, mode %s, %v\n", cfg.Seed, cfg.Mode, cfg.Duration)
	ctx, stop := signalContext()
	defer stop()
	rep, err := chaos.Run(ctx, cfg)
	if err != nil {
		if msg, ok := strings.CutPrefix(err.Error(), "chaos: --"); ok {
			return c.usageError("--%s", msg)
		}
		return c.fail(err)
	}
	violated := rep.Violations()
	if f.dir == "" && len(violated) == 0 {
		removeRunDir(&rep.Dir)
	}
	if code := c.report(f.asJSON, rep, rep.Write); code != 0 {
		return code
	}
	if f.check && len(violated) > 0 {
		return exitViolated
	}
	return 0
}

// nodeBinary is the path of this program, which the harnesses run as
// their servers, proxies and hosts.
func nodeBinary() (string, error) {
	bin, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("the node binary to run: %w", err)
	}
	return bin, nil
}

// removeRunDir removes the temporary directory of a run, and says so in
// its name.
func removeRunDir(dir *string) {
	os.RemoveAll(*dir)
	*dir += " (removed: --dir keeps them)"
}

// argsFlag is a flag that may be repeated, each value one argument (commas
// kept).
type argsFlag []string

func (a *argsFlag) String() string { return strings.Join(*a, " ") }

func (a *argsFlag) Set(s string) error {
	*a = append(*a, s)
	return nil
}

// Get implements flag.Getter.
func (a *argsFlag) Get() any { return []string(*a) }
