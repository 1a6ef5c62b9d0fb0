package main

import (
	"flag"
	"fmt"
	"io"
	"runtime"

	"github.com/relay-dev/relay/internal/bench"
)

// exitTargetsMissed is bench --check's exit code when a target is not met.
const exitTargetsMissed = 3

// benchAbout is node bench's help.
const benchAbout = `Measures, in one run and in this process (nodes over tcp on 127.0.0.1 unless
said, in-memory matchmaker), each row against its baseline in --rounds rounds,
interleaved (relay, then its baseline, in every round, so that the machine's
noise hits both). A value is the median over rounds; a ratio is the median of
the per-round ratios, printed with their min-max range. Rows and targets
(issue 8):
  1 call p50: sequential Call of a --size echo / raw zmq4 DEALER->ROUTER
    round trip p50 (p99 printed too)                              <= 1.3x
  2 calls/s from --concurrency callers / raw, one DEALER with as many
    requests in flight                                            >= 1.0
  3 casts/s at the receiver / raw PUSH->PULL msgs/s                >= 1.0
  4 flood: --flood casts as fast as Cast returns, no retry; casts Cast
    accepted (nil) but the receiver never handled (waits until handled ==
    accepted, or 5 s without progress)                  0 in every round
  5 notify msgs/s through a publisher proxy with acks / direct    >= 0.5
  6 pipelined calls/s through one router proxy / direct (row 2)   >= 0.7
  7 same-process call p50 (two nodes WithInproc) / gRPC unary p50, given
    with --grpc-p50 (cd ../shared/peers && go run . -only grpc)   <= 1.0
  8 per call (N/10 sequential calls): cgo calls                   <= 12
                                      heap allocations            <= 15
    also printed, per call and per cast (casts counted until handled):
    goroutine hand-offs (runtime trace), netpoller wake-ups, bytes
  9 heap of an idle node (10 nodes serving a target, one call each,
    HeapAlloc delta after GC / 10)                                <= 4 MiB
    heap per pending call, client + server (--pending calls blocked in the
    server's handlers and queue)                                  <= 1 KiB
    (Go heap only: goroutine stacks and libzmq's C memory are not heap)
Also: fanout to 10 servers and notify, direct and through a publisher proxy;
with --router-proxy, call latency through a router proxy and the TCP
connections of 20 nodes direct vs through 3 router proxies.

The header gives the machine (CPUs, GOMAXPROCS) and its load average at the
start and the end: compare ratios within one run, absolute figures move with
the load. Progress goes to stderr. The defaults take about a minute or two on
2 cores.

Exit code: 0 when the run completed (with --check: and no target was missed),
1 when it failed, 3 with --check when a target was not met (each missed
target is named on stderr; a row not measured, such as row 7 without
--grpc-p50, is named too but is not a miss).
`

func benchCommand() command {
	return command{
		name:     "bench",
		short:    "measure relay against raw libzmq and its other baselines, and check the targets",
		synopsis: "[--rounds R --n N --calls N --concurrency C --casts N --flood N --pending M --fanouts N --grpc-p50 D --size B --json --check]",
		about:    benchAbout,
		examples: `  node bench
  node bench --rounds 5
  node bench --grpc-p50 55us          # row 7 against gRPC's p50 from ../shared/peers
  node bench --rounds 1 --n 2000 --calls 10000 --casts 20000 --flood 50000
  node bench --json > bench.json
  node bench --check || echo "a target was missed"
`,
		setup: setupOf(func() commandFlags { return &benchFlags{} }),
	}
}

// benchFlags are node bench's flags.
type benchFlags struct {
	cfg                  bench.Config
	asJSON, curve, check bool
}

func (b *benchFlags) register(fs *flag.FlagSet) {
	def := bench.DefaultConfig()
	cfg := &b.cfg
	*cfg = def
	fs.IntVar(&cfg.Rounds, "rounds", def.Rounds, "rounds; in each, every row is measured, relay then its baseline")
	fs.IntVar(&cfg.N, "n", def.N, "sequential calls (and raw round trips) for latency, tcp and same-process; n/10 calls for the cost")
	fs.IntVar(&cfg.Calls, "calls", def.Calls, "pipelined calls (and raw pipelined round trips), direct and through a router proxy")
	fs.IntVar(&cfg.Concurrency, "concurrency", def.Concurrency, "concurrent callers (requests in flight) when pipelined")
	fs.IntVar(&cfg.Casts, "casts", def.Casts, "casts (and raw PUSH/PULL messages); casts/10 for the cost")
	fs.IntVar(&cfg.Flood, "flood", def.Flood, "casts of the flood (row 4), not retried")
	fs.IntVar(&cfg.Pending, "pending", def.Pending, "calls in flight for the heap per pending call (row 9)")
	fs.IntVar(&cfg.Fanouts, "fanouts", def.Fanouts, "notifications (row 5) and fanouts to 10 servers per mode, direct and proxy; 0 skips them")
	fs.DurationVar(&cfg.GRPCP50, "grpc-p50", 0, "gRPC unary p50 from ../shared/peers on this machine, for row 7 (e.g. 55us)")
	fs.IntVar(&cfg.Size, "size", def.Size, "payload bytes")
	fs.BoolVar(&cfg.RouterProxy, "router-proxy", false, "also measure call latency through a router proxy, and count connections direct vs proxied")
	fs.BoolVar(&b.asJSON, "json", false, "print the report as JSON")
	fs.BoolVar(&b.curve, "curve", false, "measure call latency, pipelined calls, casts and the cost of a call with CURVE next to plaintext, in one run (instead of the comparison with raw libzmq)")
	fs.BoolVar(&b.check, "check", false, fmt.Sprintf("exit with code %d when a target is not met", exitTargetsMissed))
}

// run runs the benchmark and prints its report.
func (b *benchFlags) run(c *cli) int {
	if code, ok := c.noArgs(); !ok {
		return code
	}
	ctx, stop := signalContext()
	defer stop()
	fmt.Fprintf(c.stderr, "node bench: %s/%s, %d CPUs, GOMAXPROCS %d, %d rounds\n",
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0), b.cfg.Rounds)
	if b.curve {
		return c.benchCurve(ctx, b.cfg, b.asJSON)
	}
	rep, err := bench.Run(ctx, b.cfg, func(step string) { fmt.Fprintf(c.stderr, "node bench: %s\n", step) })
	if err != nil {
		return c.fail(err)
	}
	if code := c.report(b.asJSON, rep, func(w io.Writer) { printReport(w, rep) }); code != 0 {
		return code
	}
	if !b.check {
		return 0
	}
	return c.checkTargets(rep)
}

// checkTargets names on stderr each target not checked and each missed,
// and returns exitTargetsMissed when one was missed.
func (c *cli) checkTargets(rep bench.Report) int {
	for _, row := range rep.Rows {
		if row.Verdict == bench.NotMeasured {
			fmt.Fprintf(c.stderr, "node bench: target not checked: %s: %s\n", row.Name, row.Note)
		}
	}
	missed := rep.Missed()
	for _, row := range missed {
		fmt.Fprintf(c.stderr, "node bench: target not met: %s: want %s, got %s\n", row.Name, row.Want, got(row))
	}
	if len(missed) > 0 {
		return exitTargetsMissed
	}
	return 0
}
