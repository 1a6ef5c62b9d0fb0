package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/relay-dev/relay/internal/bench"
)

// exitTargetsMissed is bench --check's exit code when a target is not met.
const exitTargetsMissed = 3

func benchCommand() command {
	return command{
		name:     "bench",
		short:    "measure relay against raw libzmq and check the targets",
		synopsis: "[--n N --calls N --concurrency C --casts N --size B --json --check]",
		about: `Measures, in one run and in this process (client and server nodes over tcp
on 127.0.0.1, in-memory matchmaker):
  - relay sequential call latency (p50, p99) vs a raw zmq4 DEALER/ROUTER round trip
  - relay pipelined calls/s (--concurrency callers) vs raw pipelined round trips/s
  - relay casts/s measured at the receiver vs raw zmq4 PUSH/PULL msgs/s
prints relay, raw and their ratio, and checks the targets: call p50 <= 1.3x
raw, pipelined >= 150,000 calls/s, casts >= 50% of raw PUSH/PULL.
Progress goes to stderr. Compare ratios within one run: absolute figures
move with the machine's load.

Exit code: 0 when the run completed (with --check: and every target was
met), 1 when it failed, 3 with --check when a target was not met (each
missed target is named on stderr).
`,
		examples: `  node bench
  node bench --n 5000 --calls 20000 --casts 50000
  node bench --json > bench.json
  node bench --check || echo "a target was missed"
`,
		setup: func(fs *flag.FlagSet) func(*cli) int {
			def := bench.DefaultConfig()
			cfg := def
			fs.IntVar(&cfg.N, "n", def.N, "sequential calls (and raw round trips) for latency")
			fs.IntVar(&cfg.Calls, "calls", def.Calls, "pipelined calls (and raw pipelined round trips)")
			fs.IntVar(&cfg.Concurrency, "concurrency", def.Concurrency, "concurrent callers (requests in flight) when pipelined")
			fs.IntVar(&cfg.Casts, "casts", def.Casts, "casts (and raw PUSH/PULL messages)")
			fs.IntVar(&cfg.Size, "size", def.Size, "payload bytes")
			fs.BoolVar(&cfg.RouterProxy, "router-proxy", false, "also measure calls through a router proxy, and count connections direct vs proxied")
			fs.IntVar(&cfg.Fanouts, "fanouts", def.Fanouts, "fanouts (to 10 servers) and notifications per mode, direct and proxy; 0 skips them")
			asJSON := fs.Bool("json", false, "print the report as JSON")
			curveCmp := fs.Bool("curve", false, "measure call latency, pipelined calls, casts and the cost of a call with CURVE next to plaintext, in one run (instead of the comparison with raw libzmq)")
			check := fs.Bool("check", false, fmt.Sprintf("exit with code %d when a target is not met", exitTargetsMissed))
			return func(c *cli) int {
				if code, ok := c.noArgs(); !ok {
					return code
				}
				ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
				defer stop()
				fmt.Fprintf(c.stderr, "node bench: %s/%s, %d CPUs, GOMAXPROCS %d\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0))
				if *curveCmp {
					return c.benchCurve(ctx, cfg, *asJSON)
				}
				rep, err := bench.Run(ctx, cfg, func(step string) { fmt.Fprintf(c.stderr, "node bench: %s\n", step) })
				if err != nil {
					return c.fail(err)
				}
				if *asJSON {
					enc := json.NewEncoder(c.stdout)
					enc.SetIndent("", "  ")
					out := struct {
						bench.Report
						LatencyRatio   float64       `json:"latency_ratio"`
						PipelinedRatio float64       `json:"pipelined_ratio"`
						CastRatio      float64       `json:"cast_ratio"`
						Targets        []bench.Check `json:"targets"`
					}{rep, rep.LatencyRatio(), rep.PipelinedRatio(), rep.CastRatio(), rep.Targets()}
					if err := enc.Encode(out); err != nil {
						return c.fail(err)
					}
				} else {
					printReport(c.stdout, rep)
				}
				if !*check {
					return 0
				}
				missed := 0
				for _, t := range rep.Targets() {
					if !t.Met {
						missed++
						fmt.Fprintf(c.stderr, "node bench: target not met: %s: want %s, got %s\n", t.Name, t.Want, got(t))
					}
				}
				if missed > 0 {
					return exitTargetsMissed
				}
				return 0
			}
		},
	}
}

// printReport prints the figures table, the cast details and the targets.
func printReport(w io.Writer, r bench.Report) {
	c := r.Config
	fmt.Fprintf(w, "\nrelay vs raw libzmq, %d B payload, tcp on 127.0.0.1, one process\n\n", c.Size)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "measurement\trelay\traw zmq4\tratio\t")
	fmt.Fprintf(tw, "call latency p50 (n=%d)\t%s\t%s\t%.2fx\t\n", c.N, us(r.RelayLatency.P50), us(r.RawLatency.P50), r.LatencyRatio())
	fmt.Fprintf(tw, "call latency p99\t%s\t%s\t%.2fx\t\n", us(r.RelayLatency.P99), us(r.RawLatency.P99),
		float64(r.RelayLatency.P99)/float64(max(r.RawLatency.P99, 1)))
	fmt.Fprintf(tw, "pipelined calls/s (%d in flight)\t%s\t%s\t%.2f\t\n", r.RelayPipelined.Concurrency,
		rate(r.RelayPipelined.Rate), rate(r.RawPipelined.Rate), r.PipelinedRatio())
	fmt.Fprintf(tw, "casts/s vs PUSH/PULL msgs/s\t%s\t%s\t%.2f\t\n", rate(r.RelayCasts.Rate), rate(r.RawPushPull.Rate), r.CastRatio())
	tw.Flush()

	rc := r.RelayCasts
	fmt.Fprintf(w, "\nrelay casts: %d sent, %d received, %d back-pressure retries, %d dropped (counted by the client node)\n",
		rc.Sent, rc.Received, rc.Retries, rc.Dropped)
	if !rc.Complete {
		fmt.Fprintf(w, "WARNING: %d casts never arrived; the cast rate covers those that did\n", rc.Sent-rc.Received)
	}

	if c.Fanouts > 0 {
		fmt.Fprintf(w, "\none-to-many, %d B payload, messages published per second (each delivered to every receiver)\n\n", c.Size)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "measurement\tdirect\tproxy (acks)\t")
		fmt.Fprintf(tw, "fanout to %d servers, msgs/s\t%s\t%s\t\n", bench.FanoutSubscribers, rate(r.FanoutDirect.Rate), rate(r.FanoutProxy.Rate))
		fmt.Fprintf(tw, "notify to 1 listener, msgs/s\t%s\t%s\t\n", rate(r.NotifyDirect.Rate), rate(r.NotifyProxy.Rate))
		tw.Flush()
	}

	if c.RouterProxy {
		fmt.Fprintf(w, "\nrouter proxy (1 proxy between client and server), %d B payload\n\n", c.Size)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "measurement\tdirect\tthrough proxy\t")
		fmt.Fprintf(tw, "call latency p50\t%s\t%s\t\n", us(r.RelayLatency.P50), us(r.RoutedLatency.P50))
		fmt.Fprintf(tw, "call latency p99\t%s\t%s\t\n", us(r.RelayLatency.P99), us(r.RoutedLatency.P99))
		fmt.Fprintf(tw, "pipelined calls/s\t%s\t%s\t\n", rate(r.RelayPipelined.Rate), rate(r.RoutedPipeline.Rate))
		fmt.Fprintf(tw, "TCP connections, %d nodes (%d clients x %d servers; %d proxies)\t%d\t%d\t\n",
			r.Conns.Nodes, r.Conns.Nodes-r.Conns.Nodes/2, r.Conns.Nodes/2, r.Conns.Proxies, r.Conns.Direct, r.Conns.Routed)
		tw.Flush()
	}

	fmt.Fprintln(w, "\ntargets:")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, t := range r.Targets() {
		met := "met"
		if !t.Met {
			met = "not met"
		}
		fmt.Fprintf(tw, "  %s\twant %s\tgot %s\t%s\n", t.Name, t.Want, got(t), met)
	}
	tw.Flush()
}

// got renders what a target measured.
func got(t bench.Check) string {
	if t.Name == "pipelined calls/s" {
		return rate(t.Got)
	}
	return fmt.Sprintf("%.2f", t.Got)
}

// us renders d in microseconds.
func us(d time.Duration) string { return fmt.Sprintf("%.1f µs", float64(d)/float64(time.Microsecond)) }

// rate renders a per-second rate with thousands separators.
func rate(v float64) string {
	n := int64(v + 0.5)
	s := fmt.Sprint(n)
	out := make([]byte, 0, len(s)+len(s)/3)
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}
