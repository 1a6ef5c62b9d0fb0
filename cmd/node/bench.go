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
	"strings"
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
		short:    "measure relay against raw libzmq and its other baselines, and check the targets",
		synopsis: "[--rounds R --n N --calls N --concurrency C --casts N --flood N --pending M --fanouts N --grpc-p50 D --size B --json --check]",
		about: `Measures, in one run and in this process (nodes over tcp on 127.0.0.1 unless
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
`,
		examples: `  node bench
  node bench --rounds 5
  node bench --grpc-p50 55us          # row 7 against gRPC's p50 from ../shared/peers
  node bench --rounds 1 --n 2000 --calls 10000 --casts 20000 --flood 50000
  node bench --json > bench.json
  node bench --check || echo "a target was missed"
`,
		setup: func(fs *flag.FlagSet) func(*cli) int {
			def := bench.DefaultConfig()
			cfg := def
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
			asJSON := fs.Bool("json", false, "print the report as JSON")
			curveCmp := fs.Bool("curve", false, "measure call latency, pipelined calls, casts and the cost of a call with CURVE next to plaintext, in one run (instead of the comparison with raw libzmq)")
			check := fs.Bool("check", false, fmt.Sprintf("exit with code %d when a target is not met", exitTargetsMissed))
			return func(c *cli) int {
				if code, ok := c.noArgs(); !ok {
					return code
				}
				ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
				defer stop()
				fmt.Fprintf(c.stderr, "node bench: %s/%s, %d CPUs, GOMAXPROCS %d, %d rounds\n",
					runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0), cfg.Rounds)
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
					if err := enc.Encode(rep); err != nil {
						return c.fail(err)
					}
				} else {
					printReport(c.stdout, rep)
				}
				if !*check {
					return 0
				}
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
		},
	}
}

// printReport prints the header, the rows, and the details.
func printReport(w io.Writer, r bench.Report) {
	c, m := r.Config, r.Machine
	fmt.Fprintf(w, "\nnode bench: relay vs its baselines, %d B payload, one process, tcp on 127.0.0.1 unless said\n", c.Size)
	fmt.Fprintf(w, "machine: %s/%s, %d CPUs, GOMAXPROCS %d, %s; load average %s at start, %s at end; took %v\n",
		m.OS, m.Arch, m.CPUs, m.GOMAXPROCS, m.Go, m.LoadStart, m.LoadEnd, r.Elapsed.Round(time.Second))
	fmt.Fprintf(w, "%d rounds, interleaved (relay, then its baseline); values: medians over rounds; ratios: median of the per-round ratios (min-max)\n\n", c.Rounds)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "#\trow\trelay\tbaseline\tratio\t(min-max)\ttarget\tverdict")
	for _, row := range r.Rows {
		base, ratio, spread := "-", "-", ""
		if row.Baseline != nil && len(row.Baseline.Rounds) > 0 {
			base = value(row.Unit, row.Baseline.Median)
		}
		if row.Ratio != nil && len(row.Ratio.Rounds) > 0 {
			ratio = times(row, row.Ratio.Median)
			spread = fmt.Sprintf("(%s-%s)", times(row, row.Ratio.Min), times(row, row.Ratio.Max))
		} else if len(row.Relay.Rounds) > 1 {
			spread = fmt.Sprintf("(%s-%s)", value(row.Unit, row.Relay.Min), value(row.Unit, row.Relay.Max))
		}
		relay := "-"
		if len(row.Relay.Rounds) > 0 {
			relay = value(row.Unit, row.Relay.Median)
		}
		want, verdict := row.Want, row.Verdict
		if row.Target == nil {
			want, verdict = "-", "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", row.No, row.Name, relay, base, ratio, spread, want, verdict)
	}
	tw.Flush()
	for _, row := range r.Rows {
		if row.Verdict == bench.NotMeasured && row.Note != "" {
			fmt.Fprintf(w, "row %s: %s\n", row.No, row.Note)
		}
	}

	med := r.Median
	fmt.Fprintf(w, "\nrow 3, casts (retrying back-pressure): %s sent, %s received, %s back-pressure retries, %s dropped by the client node (medians)\n",
		count(med(func(x bench.Round) float64 { return float64(x.Casts.Sent) })),
		count(med(func(x bench.Round) float64 { return float64(x.Casts.Received) })),
		count(med(func(x bench.Round) float64 { return float64(x.Casts.Retries) })),
		count(med(func(x bench.Round) float64 { return float64(x.Casts.Dropped) })))
	fmt.Fprintln(w, "row 4, flood (no retry), per round:")
	for i, rd := range r.Rounds {
		f := rd.Flood
		state := "all accepted casts handled"
		if !f.Complete {
			state = "receiver stalled for 5 s before handling every accepted cast"
		}
		fmt.Fprintf(w, "  round %d: %s casts: %s accepted, %s refused (ErrBackPressure), %s handled, %s lost, %s dropped by the client node; %s\n",
			i+1, count(float64(f.N)), count(float64(f.Accepted)), count(float64(f.Refused)), count(float64(f.Handled)),
			count(float64(f.Lost)), count(float64(f.Dropped)), state)
	}

	fmt.Fprintln(w, "\nrow 8, cost (medians; hand-offs and netpoller wake-ups from a runtime trace of a tenth of the operations):")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  per\thand-offs\tnetpoll wake-ups\tcgo calls\tallocs\tbytes\twall time\t")
	for _, k := range []struct {
		name string
		get  func(bench.Round) bench.Cost
	}{
		{"call (sequential)", func(x bench.Round) bench.Cost { return x.CallCost }},
		{"cast (until handled)", func(x bench.Round) bench.Cost { return x.CastCost }},
	} {
		f := func(g func(bench.Cost) float64) float64 {
			return med(func(x bench.Round) float64 { return g(k.get(x)) })
		}
		fmt.Fprintf(tw, "  %s\t%.2f\t%.2f\t%.2f\t%.2f\t%.0f\t%.1f µs\t\n", k.name,
			f(func(c bench.Cost) float64 { return c.Handoffs }), f(func(c bench.Cost) float64 { return c.Netpoll }),
			f(func(c bench.Cost) float64 { return c.Cgo }), f(func(c bench.Cost) float64 { return c.Allocs }),
			f(func(c bench.Cost) float64 { return c.Bytes }), f(func(c bench.Cost) float64 { return c.Elapsed })/1e3)
	}
	tw.Flush()

	fmt.Fprintln(w, "\nrow 9, memory (medians; heap is Go heap only: goroutine stacks and libzmq's C memory are not heap):")
	fmt.Fprintf(w, "  idle node: heap %s, goroutine stacks %s, %.1f goroutines\n",
		bytesOf(med(func(x bench.Round) float64 { return x.IdleNode.HeapBytes })),
		bytesOf(med(func(x bench.Round) float64 { return x.IdleNode.StackBytes })),
		med(func(x bench.Round) float64 { return x.IdleNode.Goroutines }))
	fmt.Fprintf(w, "  pending call: heap %s; stacks grew by %s per call (callers' goroutines existed before, their stacks grow in Call; handler workers' stacks)\n",
		bytesOf(med(func(x bench.Round) float64 { return x.PendingCall.HeapBytes })),
		bytesOf(med(func(x bench.Round) float64 { return x.PendingCall.StackBytes })))

	if c.Fanouts > 0 {
		fmt.Fprintf(w, "\none-to-many, messages published per second (each delivered to every receiver), medians:\n")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  measurement\tdirect\tpublisher proxy (acks)\t")
		fmt.Fprintf(tw, "  fanout to %d servers, msgs/s\t%s\t%s\t\n", bench.FanoutSubscribers,
			rate(med(func(x bench.Round) float64 { return x.FanoutDirect.Rate })), rate(med(func(x bench.Round) float64 { return x.FanoutProxy.Rate })))
		fmt.Fprintf(tw, "  notify to 1 listener, msgs/s\t%s\t%s\t\n",
			rate(med(func(x bench.Round) float64 { return x.NotifyDirect.Rate })), rate(med(func(x bench.Round) float64 { return x.NotifyProxy.Rate })))
		tw.Flush()
	}

	if c.RouterProxy {
		p50 := func(get func(bench.Round) time.Duration) string {
			return us(time.Duration(med(func(x bench.Round) float64 { return float64(get(x)) })))
		}
		fmt.Fprintf(w, "\nrouter proxy (1 proxy between client and server), medians:\n")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  measurement\tdirect\tthrough proxy\t")
		fmt.Fprintf(tw, "  call latency p50\t%s\t%s\t\n", p50(func(x bench.Round) time.Duration { return x.CallLatency.P50 }),
			p50(func(x bench.Round) time.Duration { return x.RoutedLatency.P50 }))
		fmt.Fprintf(tw, "  call latency p99\t%s\t%s\t\n", p50(func(x bench.Round) time.Duration { return x.CallLatency.P99 }),
			p50(func(x bench.Round) time.Duration { return x.RoutedLatency.P99 }))
		fmt.Fprintf(tw, "  pipelined calls/s\t%s\t%s\t\n", rate(med(func(x bench.Round) float64 { return x.Pipelined.Rate })),
			rate(med(func(x bench.Round) float64 { return x.RoutedPipelined.Rate })))
		fmt.Fprintf(tw, "  TCP connections, %d nodes (%d clients x %d servers; %d proxies)\t%d\t%d\t\n",
			r.Conns.Nodes, r.Conns.Nodes-r.Conns.Nodes/2, r.Conns.Nodes/2, r.Conns.Proxies, r.Conns.Direct, r.Conns.Routed)
		tw.Flush()
	}

	met, missed, unchecked := 0, 0, 0
	for _, row := range r.Rows {
		switch row.Verdict {
		case bench.Met:
			met++
		case bench.NotMet:
			missed++
		case bench.NotMeasured:
			unchecked++
		}
	}
	fmt.Fprintf(w, "\ntargets: %d met, %d not met, %d not measured\n", met, missed, unchecked)
}

// value renders a row's figure in its unit.
func value(unit string, v float64) string {
	switch unit {
	case "µs":
		return fmt.Sprintf("%.1f µs", v)
	case "/s":
		return rate(v) + "/s"
	case "bytes":
		return bytesOf(v)
	case "casts":
		return count(v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// got renders what a row's target was checked against.
func got(row bench.Row) string {
	if row.Ratio != nil {
		return times(row, row.Got)
	}
	return value(row.Unit, row.Got)
}

// times renders a ratio of a row, as a multiple for latencies.
func times(row bench.Row, v float64) string {
	if row.Unit == "µs" {
		return fmt.Sprintf("%.2f×", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// bytesOf renders a byte count in B, KiB or MiB.
func bytesOf(v float64) string {
	switch a := max(v, -v); {
	case a < 1<<10:
		return fmt.Sprintf("%.0f B", v)
	case a < 1<<20:
		return fmt.Sprintf("%.1f KiB", v/(1<<10))
	default:
		return fmt.Sprintf("%.2f MiB", v/(1<<20))
	}
}

// us renders d in microseconds.
func us(d time.Duration) string { return fmt.Sprintf("%.1f µs", float64(d)/float64(time.Microsecond)) }

// rate renders a per-second rate with thousands separators.
func rate(v float64) string { return count(v) }

// count renders v rounded to a whole number, with thousands separators.
func count(v float64) string {
	n := int64(v + 0.5)
	if v < 0 {
		n = int64(v - 0.5)
	}
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	out := make([]byte, 0, len(s)+len(s)/3+1)
	if neg {
		out = append(out, '-')
	}
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}
