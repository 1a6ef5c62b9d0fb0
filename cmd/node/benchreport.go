package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/relay-dev/relay/internal/bench"
)

// printReport prints the header, the rows, and the details.
func printReport(w io.Writer, r bench.Report) {
	c, m := r.Config, r.Machine
	fmt.Fprintf(w, "\nnode bench: relay vs its baselines, %d B payload, one process, tcp on 127.0.0.1 unless said\n", c.Size)
	fmt.Fprintf(w, "machine: %s/%s, %d CPUs, GOMAXPROCS %d, %s; load average %s at start, %s at end; took %v\n",
		m.OS, m.Arch, m.CPUs, m.GOMAXPROCS, m.Go, m.LoadStart, m.LoadEnd, r.Elapsed.Round(time.Second))
	fmt.Fprintf(w, "%d rounds, interleaved (relay, then its baseline); values: medians over rounds; ratios: median of the per-round ratios (min-max)\n\n", c.Rounds)
	printRows(w, r.Rows)
	printCasts(w, r)
	printCost(w, r)
	printMemory(w, r)
	if c.Fanouts > 0 {
		printFanouts(w, r)
	}
	if c.RouterProxy {
		printRouterProxy(w, r)
	}
	printTargets(w, r.Rows)
}

// printRows prints the table of rows, and the note of each row not
// measured.
func printRows(w io.Writer, rows []bench.Row) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "#\trow\trelay\tbaseline\tratio\t(min-max)\ttarget\tverdict")
	for _, row := range rows {
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
	for _, row := range rows {
		if row.Verdict == bench.NotMeasured && row.Note != "" {
			fmt.Fprintf(w, "row %s: %s\n", row.No, row.Note)
		}
	}
}

// printCasts prints the details of rows 3 (casts) and 4 (the flood).
func printCasts(w io.Writer, r bench.Report) {
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
}

// printCost prints the details of row 8, the cost of a call and a cast.
func printCost(w io.Writer, r bench.Report) {
	med := r.Median
	fmt.Fprintln(w, "\nrow 8, cost (medians; hand-offs and netpoller wake-ups from a runtime trace of a tenth of the operations):")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
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
}

// printMemory prints the details of row 9, memory.
func printMemory(w io.Writer, r bench.Report) {
	med := r.Median
	fmt.Fprintln(w, "\nrow 9, memory (medians; heap is Go heap only: goroutine stacks and libzmq's C memory are not heap):")
	fmt.Fprintf(w, "  idle node: heap %s, goroutine stacks %s, %.1f goroutines\n",
		bytesOf(med(func(x bench.Round) float64 { return x.IdleNode.HeapBytes })),
		bytesOf(med(func(x bench.Round) float64 { return x.IdleNode.StackBytes })),
		med(func(x bench.Round) float64 { return x.IdleNode.Goroutines }))
	fmt.Fprintf(w, "  pending call: heap %s; stacks grew by %s per call (callers' goroutines existed before, their stacks grow in Call; handler workers' stacks)\n",
		bytesOf(med(func(x bench.Round) float64 { return x.PendingCall.HeapBytes })),
		bytesOf(med(func(x bench.Round) float64 { return x.PendingCall.StackBytes })))
}

// printFanouts prints fanouts and notifications, direct and through a
// publisher proxy.
func printFanouts(w io.Writer, r bench.Report) {
	med := r.Median
	fmt.Fprintf(w, "\none-to-many, messages published per second (each delivered to every receiver), medians:\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  measurement\tdirect\tpublisher proxy (acks)\t")
	fmt.Fprintf(tw, "  fanout to %d servers, msgs/s\t%s\t%s\t\n", bench.FanoutSubscribers,
		rate(med(func(x bench.Round) float64 { return x.FanoutDirect.Rate })), rate(med(func(x bench.Round) float64 { return x.FanoutProxy.Rate })))
	fmt.Fprintf(tw, "  notify to 1 listener, msgs/s\t%s\t%s\t\n",
		rate(med(func(x bench.Round) float64 { return x.NotifyDirect.Rate })), rate(med(func(x bench.Round) float64 { return x.NotifyProxy.Rate })))
	tw.Flush()
}

// printRouterProxy prints calls direct and through a router proxy, and
// the connections of both.
func printRouterProxy(w io.Writer, r bench.Report) {
	med := r.Median
	p50 := func(get func(bench.Round) time.Duration) string {
		return us(time.Duration(med(func(x bench.Round) float64 { return float64(get(x)) })))
	}
	fmt.Fprintf(w, "\nrouter proxy (1 proxy between client and server), medians:\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
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

// printTargets prints how many targets were met, missed and not measured.
func printTargets(w io.Writer, rows []bench.Row) {
	met, missed, unchecked := 0, 0, 0
	for _, row := range rows {
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
