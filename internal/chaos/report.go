package chaos

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/relay-dev/relay/internal/proc"
)

// Report is what a run did. docs/RELIABILITY.md explains each column of
// its table (Write).
type Report struct {
	Mode        string        `json:"mode"`
	Seed        int64         `json:"seed"`
	Duration    time.Duration `json:"duration"`
	Rate        int           `json:"rate"`
	Servers     int           `json:"servers"`
	Proxies     int           `json:"proxies"`
	CallTimeout time.Duration `json:"call_timeout"`
	LateAfter   time.Duration `json:"late_after"`
	Dir         string        `json:"dir"`          // the journals and logs
	LoadAverage [2]string     `json:"load_average"` // at the start and at the end of the load
	Skipped     int           `json:"skipped"`      // messages the pacer could not send: every worker was busy

	Faults    []Fault      `json:"faults"`
	Calls     []CallRow    `json:"calls"`
	Casts     []CastRow    `json:"casts"`
	Processes []ProcessRow `json:"processes"`
	Crashes   []Crash      `json:"crashes"`
	Counters  []CounterRow `json:"counters"`
	Notes     []string     `json:"notes"`
}

// CallRow counts the calls of one kind.
type CallRow struct {
	Kind    string         `json:"kind"`
	Label   string         `json:"label"`
	Issued  int            `json:"issued"`
	OK      int            `json:"ok"`
	Typed   map[string]int `json:"typed"`   // errors relay names, by name
	Untyped int            `json:"untyped"` // errors relay does not classify
	// UntypedSample is the text of one untyped error.
	UntypedSample string `json:"untyped_sample,omitempty"`
	// Unresolved: calls that had not returned by their deadline plus the
	// drain's grace.
	Unresolved int `json:"unresolved"`
	// Late: calls that returned more than LateAfter after their deadline.
	Late         int           `json:"late"`
	WorstOverrun time.Duration `json:"worst_overrun"`  // the longest a call took past its deadline
	Wrong        int           `json:"wrong"`          // replies that were not the call's own
	OKNotApplied int           `json:"ok_not_applied"` // replies whose handler journaled no A: must be 0
	Twice        int           `json:"twice"`          // handlers run more than once for the call
	TwiceAtCrash int           `json:"twice_at_crash"` // of those, every earlier run cut short by a kill
}

// CastRow counts the one-way messages of one kind: casts, fanouts (counted
// per server that should get them) and notifications.
type CastRow struct {
	Kind     string         `json:"kind"`
	Label    string         `json:"label"`
	Sent     int            `json:"sent"`
	Accepted int            `json:"accepted"` // Cast or Notify returned nil
	Refused  map[string]int `json:"refused"`  // errors, by name
	// RefusedApplied: refused, yet applied.
	RefusedApplied int `json:"refused_applied"`
	// Expected deliveries: one per accepted message (a fanout: one per
	// server that was up and settled from before it until its deadline).
	Expected int `json:"expected"`
	Applied  int `json:"applied"`
	Lost     int `json:"lost"` // expected, never applied
	// Counted: lost, and reported to the sender as undelivered by its
	// WithUndelivered hook, message by message.
	Counted int `json:"counted"`
	// LostAtKill: lost, not reported, and a process on its path was
	// killed before its deadline: without acks, what a kill takes is gone.
	LostAtKill int `json:"lost_at_kill"`
	// Silent: lost, not reported, and (with acks: whatever happened) no
	// kill explains it. Counted + LostAtKill + Silent = Lost.
	Silent int `json:"silent"`
	// ReportedApplied: reported undelivered, yet applied (the handler ran;
	// its ACK did not come back in time).
	ReportedApplied int `json:"reported_applied"`
	// Dropped: the sender's Stats().DroppedCasts over the run.
	Dropped      uint64 `json:"dropped"`
	Twice        int    `json:"twice"`
	TwiceAtCrash int    `json:"twice_at_crash"`
	// LostSample names the first few messages counted in Silent: key,
	// when accepted (since the load began), to which server.
	LostSample []string `json:"lost_sample,omitempty"`
}

// ProcessRow is one process: its starts and kills, and what it held at the
// start and at the end of the load.
type ProcessRow struct {
	Name         string     `json:"name"`
	Role         string     `json:"role"`
	Starts       int        `json:"starts"`
	Kills        int        `json:"kills"`
	Crashes      int        `json:"crashes"`
	FailedStarts int        `json:"failed_starts"`
	Start        proc.Usage `json:"start"` // Measured says which were read
	End          proc.Usage `json:"end"`
	Measured     [2]bool    `json:"measured"`
	Goroutines   [2]int     `json:"goroutines"` // -1: not known
}

// Crash is a process that died without being killed, or did not stop
// cleanly.
type Crash struct {
	Name        string `json:"name"`
	Incarnation int    `json:"incarnation"`
	How         string `json:"how"`
	Exit        string `json:"exit"`
	Log         string `json:"log"`
	Tail        string `json:"tail"`
}

// CounterRow is a node's counters that are not zero.
type CounterRow struct {
	Node     string            `json:"node"`
	Counters map[string]uint64 `json:"counters"`
}

// Violations lists the invariants that must hold and did not: no call
// unresolved, every call ended by its deadline (plus LateAfter) with its
// own outcome, no reply without its handler's effect, no cast with acks
// lost without a report to its sender, no process crashed (but those
// killed).
func (r *Report) Violations() []string {
	var v []string
	for _, c := range r.Calls {
		if c.Unresolved > 0 {
			v = append(v, fmt.Sprintf("%s: %d unresolved calls", c.Label, c.Unresolved))
		}
		if c.Late > 0 {
			v = append(v, fmt.Sprintf("%s: %d calls ended more than %v after their deadline (worst %v)", c.Label, c.Late, r.LateAfter, c.WorstOverrun.Round(time.Millisecond)))
		}
		if c.Wrong > 0 {
			v = append(v, fmt.Sprintf("%s: %d replies were not the call's own", c.Label, c.Wrong))
		}
		if c.OKNotApplied > 0 {
			v = append(v, fmt.Sprintf("%s: %d calls succeeded whose handler never applied them", c.Label, c.OKNotApplied))
		}
	}
	for _, c := range r.Casts {
		if c.Kind == kindACast && c.Silent > 0 {
			v = append(v, fmt.Sprintf("%s: %d lost with no report to their sender (%s)", c.Label, c.Silent, strings.Join(c.LostSample, "; ")))
		}
	}
	for _, c := range r.Crashes {
		v = append(v, fmt.Sprintf("%s (start %d) %s: %s", c.Name, c.Incarnation, c.How, c.Exit))
	}
	return v
}

// Command returns the `node chaos` command line that repeats the run's
// schedule.
func (r *Report) Command() string {
	return fmt.Sprintf("node chaos --mode %s --seed %d --duration %v --servers %d --rate %d", r.Mode, r.Seed, r.Duration, r.Servers, r.Rate)
}

// Write prints the report as tables.
func (r *Report) Write(w io.Writer) {
	fmt.Fprintf(w, "relay chaos: mode %s, seed %d, %v of load at %d msgs/s, %d servers, %d proxies\n", r.Mode, r.Seed, r.Duration, r.Rate, r.Servers, r.Proxies)
	fmt.Fprintf(w, "load average (1, 5, 15 min): %s at the start, %s at the end\n", r.LoadAverage[0], r.LoadAverage[1])
	fmt.Fprintf(w, "repeat the faults: %s\n", r.Command())
	r.writeFaults(w)
	r.writeCalls(w)
	r.writeCasts(w)
	r.writeProcesses(w)
	r.writeCounters(w)
	r.writeEnd(w)
}

// writeFaults prints the faults and how each went.
func (r *Report) writeFaults(w io.Writer) {
	fmt.Fprintf(w, "\nfaults\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, f := range r.Faults {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", f, f.Result, f.Back)
	}
	tw.Flush()
}

// writeCalls prints the calls' table and their errors.
func (r *Report) writeCalls(w io.Writer) {
	fmt.Fprintf(w, "\ncalls (deadline %v)\n", r.CallTimeout)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tissued\tok\ttyped errors\tuntyped\tunresolved\tlate\tworst overrun\twrong reply\thandled twice (at a crash)\t")
	for _, c := range r.Calls {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%v\t%d\t%d (%d)\t\n", c.Label, c.Issued, c.OK, total(c.Typed), c.Untyped,
			c.Unresolved, c.Late, c.WorstOverrun.Round(time.Millisecond), c.Wrong, c.Twice, c.TwiceAtCrash)
	}
	tw.Flush()
	for _, c := range r.Calls {
		if len(c.Typed) > 0 {
			fmt.Fprintf(w, "  %s, typed errors: %s\n", c.Label, byCount(c.Typed))
		}
		if c.UntypedSample != "" {
			fmt.Fprintf(w, "  %s, an untyped error: %s\n", c.Label, c.UntypedSample)
		}
	}
}

// writeCasts prints the one-way messages' table, their refusals and
// samples of silent losses.
func (r *Report) writeCasts(w io.Writer) {
	fmt.Fprintf(w, "\none-way messages (a fanout counts once per server that was up throughout)\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tsent\taccepted\trefused\texpected\tapplied\tlost\treported\tat a kill\tsilent\treported, yet applied\thandled twice (at a crash)\t")
	for _, c := range r.Casts {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d (%d)\t\n", c.Label, c.Sent, c.Accepted, total(c.Refused),
			c.Expected, c.Applied, c.Lost, c.Counted, c.LostAtKill, c.Silent, c.ReportedApplied, c.Twice, c.TwiceAtCrash)
	}
	tw.Flush()
	for _, c := range r.Casts {
		if len(c.Refused) > 0 {
			fmt.Fprintf(w, "  %s, refused: %s", c.Label, byCount(c.Refused))
			if c.RefusedApplied > 0 {
				fmt.Fprintf(w, " (%d of them applied all the same)", c.RefusedApplied)
			}
			fmt.Fprintln(w)
		}
		if c.Silent > 0 && len(c.LostSample) > 0 {
			fmt.Fprintf(w, "  %s, silent losses among: %s\n", c.Label, strings.Join(c.LostSample, "; "))
		}
	}
}

// writeProcesses prints what each process held at the start and the end.
func (r *Report) writeProcesses(w io.Writer) {
	fmt.Fprintf(w, "\nprocesses (start → end of the load; a process restarted is measured in its last life)\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\trole\tstarts\tkills\tcrashes\tfds\tgoroutines\tRSS MB\tpeak RSS MB\t")
	for _, p := range r.Processes {
		starts := fmt.Sprint(p.Starts)
		if p.FailedStarts > 0 {
			starts += fmt.Sprintf(" (%d failed)", p.FailedStarts)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t\n", p.Name, p.Role, starts, p.Kills, p.Crashes,
			span(p.Measured, p.Start.FDs, p.End.FDs, "%d"),
			span([2]bool{p.Goroutines[0] >= 0, p.Goroutines[1] >= 0}, p.Goroutines[0], p.Goroutines[1], "%d"),
			span(p.Measured, mb(p.Start.RSS), mb(p.End.RSS), "%.1f"), peak(p))
	}
	tw.Flush()
}

// writeCounters prints the nodes' counters.
func (r *Report) writeCounters(w io.Writer) {
	fmt.Fprintf(w, "\ncounters (client nodes: over the load; servers: since their last start)\n")
	for _, c := range r.Counters {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(c.Counters)) {
			parts = append(parts, fmt.Sprintf("%s=%d", k, c.Counters[k]))
		}
		if len(parts) == 0 {
			parts = []string{"none"}
		}
		fmt.Fprintf(w, "  %-15s %s\n", c.Node, strings.Join(parts, " "))
	}
}

// writeEnd prints what was skipped, the crashes, the notes, where the
// files are, and whether the invariants held.
func (r *Report) writeEnd(w io.Writer) {
	if r.Skipped > 0 {
		fmt.Fprintf(w, "\nthe load skipped %d messages: every worker was busy (calls hold one until they end)\n", r.Skipped)
	}
	for _, c := range r.Crashes {
		fmt.Fprintf(w, "\n%s (start %d) %s: %s; log %s:\n%s\n", c.Name, c.Incarnation, c.How, c.Exit, c.Log, indent(c.Tail))
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	fmt.Fprintf(w, "\njournals and logs: %s\n", r.Dir)
	if v := r.Violations(); len(v) > 0 {
		fmt.Fprintf(w, "\nINVARIANTS VIOLATED:\n  %s\n", strings.Join(v, "\n  "))
	} else {
		fmt.Fprintf(w, "\ninvariants held: no call unresolved, each ended by its deadline with its own outcome, no process crashed\n")
	}
}

// total is the sum of the counts of m.
func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// byCount renders counts by name, the largest first.
func byCount(m map[string]int) string {
	keys := slices.SortedFunc(maps.Keys(m), func(a, b string) int {
		if m[a] != m[b] {
			return m[b] - m[a]
		}
		return strings.Compare(a, b)
	})
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// span renders "a → b", with "-" for what was not measured.
func span[T any](measured [2]bool, a, b T, format string) string {
	s := [2]string{"-", "-"}
	for i, v := range []T{a, b} {
		if measured[i] {
			s[i] = fmt.Sprintf(format, v)
		}
	}
	return s[0] + " → " + s[1]
}

func peak(p ProcessRow) string {
	if !p.Measured[1] {
		return "-"
	}
	return fmt.Sprintf("%.1f", mb(p.End.PeakRSS))
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

func indent(s string) string { return "    " + strings.ReplaceAll(s, "\n", "\n    ") }
