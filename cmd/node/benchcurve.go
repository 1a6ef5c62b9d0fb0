package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/relay-dev/relay/internal/bench"
)

// benchCurve runs node bench --curve: relay with and without CURVE, in one
// run, and prints the comparison (or, asJSON, the report).
func (c *cli) benchCurve(ctx context.Context, cfg bench.Config, asJSON bool) int {
	rep, err := bench.CurveCompare(ctx, cfg, func(step string) { fmt.Fprintf(c.stderr, "node bench: %s\n", step) })
	if err != nil {
		return c.fail(err)
	}
	if asJSON {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return c.fail(err)
		}
		return 0
	}
	printCurve(c.stdout, rep)
	return 0
}

// printCurve prints plaintext and CURVE side by side.
func printCurve(w io.Writer, r bench.CurveReport) {
	p, k := r.Plain, r.Curve
	fmt.Fprintf(w, "\nrelay with and without CURVE, %d B payload, tcp on 127.0.0.1, one process\n\n", r.Config.Size)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "measurement\tplaintext\tCURVE\tCURVE/plaintext\t")
	fmt.Fprintf(tw, "call latency p50 (n=%d)\t%s\t%s\t%.2fx\t\n", r.Config.N, us(p.Latency.P50), us(k.Latency.P50), float64(k.Latency.P50)/float64(max(p.Latency.P50, 1)))
	fmt.Fprintf(tw, "call latency p99\t%s\t%s\t%.2fx\t\n", us(p.Latency.P99), us(k.Latency.P99), float64(k.Latency.P99)/float64(max(p.Latency.P99, 1)))
	fmt.Fprintf(tw, "pipelined calls/s (%d in flight)\t%s\t%s\t%.2f\t\n", p.Pipelined.Concurrency, rate(p.Pipelined.Rate), rate(k.Pipelined.Rate), k.Pipelined.Rate/max(p.Pipelined.Rate, 1))
	fmt.Fprintf(tw, "casts/s\t%s\t%s\t%.2f\t\n", rate(p.Casts.Rate), rate(k.Casts.Rate), k.Casts.Rate/max(p.Casts.Rate, 1))
	fmt.Fprintf(tw, "cgo calls per call\t%.1f\t%.1f\t\t\n", p.Cost.Cgo, k.Cost.Cgo)
	fmt.Fprintf(tw, "allocations per call\t%.1f\t%.1f\t\t\n", p.Cost.Allocs, k.Cost.Allocs)
	fmt.Fprintf(tw, "bytes allocated per call\t%.0f\t%.0f\t\t\n", p.Cost.Bytes, k.Cost.Bytes)
	fmt.Fprintf(tw, "goroutine hand-offs per call\t%.1f\t%.1f\t\t\n", p.Cost.Handoffs, k.Cost.Handoffs)
	tw.Flush()
	for _, run := range []bench.CurveRun{p, k} {
		if !run.Casts.Complete {
			fmt.Fprintf(w, "WARNING: curve=%v: %d casts never arrived; the cast rate covers those that did\n", run.Curve, run.Casts.Sent-run.Casts.Received)
		}
	}
}
