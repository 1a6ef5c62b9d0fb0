package scale

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
)

// ParseList reads "10,100,1000" into numbers, for flag (named in errors).
func ParseList(flag, s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("scale: --%s %q: want node counts separated by commas, such as 10,100,1000", flag, s)
		}
		out = append(out, n)
	}
	return out, nil
}

// ParseModes reads "direct,proxied" (or one mode), for flag.
func ParseModes(flag, s string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		m := strings.TrimSpace(f)
		if m != ModeDirect && m != ModeProxied {
			return nil, fmt.Errorf("scale: --%s %q: want %s, %s or both separated by a comma", flag, s, ModeDirect, ModeProxied)
		}
		out = append(out, m)
	}
	return out, nil
}

// Curve runs base once per node count of ns in each mode of modes (with
// at most one host process per node), and returns the reports in that
// order. Each run's files go in a directory of its own under base.Dir. A
// run that fails ends the curve: the reports so far come back with the
// error.
func Curve(ctx context.Context, base Config, ns []int, modes []string) ([]*Report, error) {
	if base.Dir == "" {
		dir, err := os.MkdirTemp("", "relay-scale-")
		if err != nil {
			return nil, fmt.Errorf("scale: %w", err)
		}
		base.Dir = dir
	}
	var out []*Report
	for _, n := range ns {
		for _, m := range modes {
			cfg := base
			cfg.Nodes, cfg.Mode, cfg.Procs = n, m, min(base.Procs, n)
			cfg.Dir = filepath.Join(base.Dir, fmt.Sprintf("%s-%d", m, n))
			if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
				return out, fmt.Errorf("scale: %w", err)
			}
			rep, err := Run(ctx, cfg)
			if err != nil {
				return out, fmt.Errorf("scale: %s, %d nodes: %w", m, n, err)
			}
			if base.Log != nil {
				rep.Write(base.Log)
				fmt.Fprintln(base.Log)
			}
			out = append(out, rep)
		}
	}
	return out, nil
}

// WriteCurve prints one line per report: the cost at each N.
func WriteCurve(w io.Writer, reps []*Report) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "mode\tN\tprocs\tZMQ conns\tRedis conns\tfds\tthreads\tRSS MiB\tMiB/node\t"+
		"call p50\tcall p99\tapi p50\tapi p99\tfanout last p50\tlost\tstorm reg s\tstorm calls s\tstorm ops/s\tload ops/s\tRedis MiB\tload avg\t")
	for _, r := range reps {
		zmq, redis := Connections(r.End)
		total, per := ComputeRSS(r.End)
		fds, threads := 0, 0
		for _, u := range r.End {
			fds += u.FDs
			threads += u.Threads
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%.0f\t%.2f\t%s\t%s\t%s\t%s\t%v\t%d\t%.1f\t%.1f\t%.0f\t%.0f\t%.1f\t%s\t\n",
			r.Mode, r.Nodes, r.Procs, zmq, redis, fds, threads, float64(total)/(1<<20), float64(per)/(1<<20),
			us(r.ComputeCalls.P50), us(r.ComputeCalls.P99), us(r.APICalls.P50), us(r.APICalls.P99),
			ms(r.Fanouts.LastP50), r.Fanouts.Lost+r.Notes.Lost,
			r.Storm.Registered.Seconds(), r.Storm.Reachable.Seconds(), r.Storm.OpsPerSec, r.Redis.OpsPerSec,
			float64(r.Redis.After.UsedMemory)/(1<<20), r.LoadAverage[1])
	}
	tw.Flush()
}
