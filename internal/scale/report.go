package scale

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/relay-dev/relay"
	"github.com/relay-dev/relay/internal/latency"
)

// Report is what one run measured.
type Report struct {
	Mode        string        `json:"mode"`
	Nodes       int           `json:"nodes"` // compute nodes
	Procs       int           `json:"procs"` // host processes
	Control     int           `json:"control_nodes"`
	Routers     int           `json:"routers"`
	Publishers  int           `json:"publishers"`       // central
	LocalPubs   int           `json:"local_publishers"` // one per host process
	Duration    time.Duration `json:"duration_ns"`      // asked
	Took        time.Duration `json:"took_ns"`          // the load's actual length
	LoadAverage [2]string     `json:"load_average"`     // at the start and the end
	// CPUPressure is /proc/pressure/cpu's "some avg60" at the end: the
	// share of the last minute in which some runnable thread waited for a
	// CPU (other programs' included).
	CPUPressure string        `json:"cpu_pressure"`
	Heartbeat   time.Duration `json:"heartbeat_ns"`
	HBTimeout   time.Duration `json:"heartbeat_timeout_ns"`
	Dir         string        `json:"dir"`

	Storm StormReport `json:"storm"`
	Mid   []Usage     `json:"usage_mid"` // each process, halfway through the load
	End   []Usage     `json:"usage_end"` // and at its end
	Redis RedisLoad   `json:"redis"`

	ComputeCalls CallSummary      `json:"compute_calls"` // compute → conductor
	APICalls     CallSummary      `json:"api_calls"`     // api → compute, directed
	CastsSent    int64            `json:"casts_sent"`
	CastsFailed  int64            `json:"casts_failed"`
	CastsGot     int64            `json:"casts_received"`
	Fanouts      BroadcastSummary `json:"fanouts"`
	Notes        BroadcastSummary `json:"notifications"`
	Skipped      int64            `json:"skipped"` // sends skipped: every load worker busy
	Churn        ChurnReport      `json:"churn"`
	// ListenOverflows is the machine's TcpExt ListenOverflows over the load.
	ListenOverflows int64  `json:"listen_overflows"`
	Dropped         uint64 `json:"dropped"` // the nodes' Stats: dropped or failed
	// ControlCounters and ComputeCounters are the nodes' Stats counters
	// that are not zero (the control plane's, the computes'), and
	// Restarts the actors' restarts over every node.
	ControlCounters map[string]uint64 `json:"control_counters"`
	ComputeCounters map[string]uint64 `json:"compute_counters"`
	Restarts        int               `json:"restarts"`
	// Undelivered is the one-way messages their sender reported
	// undelivered (relay.WithUndelivered), by kind, method and why;
	// CastsUndelivered the directed casts among them, but for
	// CastsMaybeLost: those reported possibly lost with a connection that
	// dropped (relay.ErrConnectionLost), which may have arrived.
	Undelivered      map[string]int64 `json:"undelivered"`
	CastsUndelivered int64            `json:"casts_undelivered"`
	CastsMaybeLost   int64            `json:"casts_maybe_lost"`
	// LoadStart is when the load began (unix ns).
	LoadStart int64 `json:"load_start"`
	// Timeline is, for each second of the load, the calls sent in it that
	// failed (compute → conductor, then api → compute) and the churn's
	// events in it ("+k" joined, "-k" left, "xk" closed).
	Timeline []Second `json:"timeline"`
	// AfterLoad is a directed call to every compute once the load and its
	// drain are over: a process that stopped exchanging messages shows
	// here.
	AfterLoad SweepReport `json:"after_load"`
	Remarks   []string    `json:"remarks"`
}

// Second is one second of the load's timeline.
type Second struct {
	At            int      `json:"at"` // seconds into the load
	ComputeFailed int      `json:"compute_failed"`
	APIFailed     int      `json:"api_failed"`
	Churn         []string `json:"churn"`
}

// timeline builds the load's timeline from when the failed calls were
// sent and when the churn's conductors joined, left and closed.
func timeline(start int64, control HostReport, hosts []HostReport) []Second {
	var out []Second
	at := func(ns int64) *Second {
		i := max(int((ns-start)/int64(time.Second)), 0)
		for len(out) <= i {
			out = append(out, Second{At: len(out)})
		}
		return &out[i]
	}
	for _, h := range hosts {
		for _, s := range h.FailedSent {
			at(s).ComputeFailed++
		}
	}
	for _, s := range control.FailedSent {
		at(s).APIFailed++
	}
	for k, c := range control.Churn {
		for _, e := range []struct {
			ns   int64
			mark string
		}{{c.Joined, "+"}, {c.Left, "-"}, {c.Closed, "x"}} {
			if e.ns != 0 {
				s := at(e.ns)
				s.Churn = append(s.Churn, e.mark+strconv.Itoa(k))
			}
		}
	}
	return out
}

// SweepReport is a directed call from the api to every compute.
type SweepReport struct {
	Answered int           `json:"answered"`
	Of       int           `json:"of"`
	Took     time.Duration `json:"took_ns"`
	// ByHost counts the computes that did not answer, by host process.
	ByHost map[string]int `json:"by_host"`
	First  string         `json:"first"` // the first failure
}

// StormReport is the registration storm: every host process launched at
// once, each starting its nodes Parallel at a time.
type StormReport struct {
	NodesStarted  int           `json:"nodes_started"`
	StartErrors   []string      `json:"start_errors"`
	SlowestHost   time.Duration `json:"slowest_host_ns"` // the longest a host process took to start its nodes
	Started       time.Duration `json:"started_ns"`      // from the launch until every node started
	Registered    time.Duration `json:"registered_ns"`   // … until the compute topic listed every compute
	Reachable     time.Duration `json:"reachable_ns"`    // … until every compute answered a directed call
	Settled       time.Duration `json:"settled_ns"`      // … until a fanout and a notification reached every compute
	RedisCommands int64         `json:"redis_commands"`  // from the launch until Registered
	Published     int64         `json:"published"`       // PUBLISH commands among them
	OpsPerSec     float64       `json:"ops_per_sec"`     // RedisCommands / Registered
	PeakOpsPerSec float64       `json:"peak_ops_per_sec"`
	// ListenOverflows counts the connections the kernel dropped meanwhile
	// because a listening socket's accept queue was full (the machine's
	// TcpExt ListenOverflows: other programs' count too).
	ListenOverflows int64    `json:"listen_overflows"`
	Notes           []string `json:"notes"`
}

// RedisLoad is Redis over the load.
type RedisLoad struct {
	Before    RedisStats `json:"before"`
	After     RedisStats `json:"after"`
	OpsPerSec float64    `json:"ops_per_sec"`
}

// CallSummary is a kind of call over the load.
type CallSummary struct {
	latency.Summary
	Failed int64            `json:"failed"`
	Errors map[string]int64 `json:"errors"`
}

// BroadcastSummary is the fanouts (or notifications) of the load: each
// should reach every compute.
type BroadcastSummary struct {
	Sent      int           `json:"sent"`
	Failed    int           `json:"failed"` // not sent
	Expected  int           `json:"expected"`
	Delivered int           `json:"delivered"`
	Lost      int           `json:"lost"`
	LastP50   time.Duration `json:"last_p50_ns"` // the time of the last receiver, median over the broadcasts
	LastMax   time.Duration `json:"last_max_ns"`
	// Incomplete are the broadcasts that did not reach every compute.
	Incomplete []Incomplete `json:"incomplete"`
}

// Incomplete is a broadcast that did not reach every compute: which,
// when it was sent, and how many computes of each host process got it.
type Incomplete struct {
	Seq     string `json:"seq"`
	At      int64  `json:"at"` // sent, unix ns
	Got     int    `json:"got"`
	PerHost []int  `json:"per_host"`
}

func newReport(cfg *Config) *Report {
	r := &Report{Mode: cfg.Mode, Nodes: cfg.Nodes, Procs: cfg.Procs, Control: cfg.Conductors + cfg.Schedulers + 1,
		Duration: cfg.Duration, Dir: cfg.Dir, Churn: ChurnReport{Every: cfg.ChurnEvery}, Heartbeat: cfg.Heartbeat, HBTimeout: cfg.HeartbeatTimeout}
	if cfg.Mode == ModeProxied {
		r.Routers, r.Publishers, r.LocalPubs = cfg.Routers, cfg.Publishers, cfg.Procs
	}
	return r
}

// add sums the control plane's report and the host processes'.
func (r *Report) add(control HostReport, hosts []HostReport) {
	r.APICalls = summarize(control.Calls)
	r.CastsSent, r.CastsFailed = control.CastsSent, control.CastsFailed
	r.Skipped, r.Dropped = control.Skipped, control.Dropped
	r.ControlCounters, r.ComputeCounters, r.Restarts = copyMap(control.Counters), map[string]uint64{}, control.Restarts
	r.Undelivered = map[string]int64{}
	for _, h := range append([]HostReport{control}, hosts...) {
		for k, v := range h.Undelivered {
			r.Undelivered[k] += v
			switch {
			case !strings.HasPrefix(k, string(relay.KindCast)+" "+MethodBuild+":"):
			case strings.HasSuffix(k, ": "+strings.TrimPrefix(relay.ErrConnectionLost.Error(), "relay: ")):
				r.CastsMaybeLost += v
			default:
				r.CastsUndelivered += v
			}
		}
	}
	var compute CallCounts
	compute.Errors = map[string]int64{}
	for _, h := range hosts {
		compute.OK += h.Calls.OK
		compute.Samples = append(compute.Samples, h.Calls.Samples...)
		for k, v := range h.Calls.Errors {
			compute.Errors[k] += v
		}
		r.CastsGot += h.CastsReceived
		r.Skipped += h.Skipped
		r.Dropped += h.Dropped
		r.Restarts += h.Restarts
		for k, v := range h.Counters {
			r.ComputeCounters[k] += v
		}
	}
	r.ComputeCalls = summarize(compute)
	r.Fanouts = broadcasts(control.Fanouts, hosts, r.Nodes, func(h HostReport) map[string]Delivery { return h.Fanouts })
	r.Notes = broadcasts(control.Notes, hosts, r.Nodes, func(h HostReport) map[string]Delivery { return h.Notes })
	r.Churn = churnReport(r.Churn.Every, control.Churn, hosts)
	r.Timeline = timeline(r.LoadStart, control, hosts)
}

func summarize(c CallCounts) CallSummary {
	s := CallSummary{Summary: latency.Summarize(c.Samples), Errors: c.Errors}
	for _, n := range c.Errors {
		s.Failed += n
	}
	return s
}

// broadcasts sums the deliveries of the broadcasts sent (probes aside).
func broadcasts(sent map[string]Delivery, hosts []HostReport, n int, pick func(HostReport) map[string]Delivery) BroadcastSummary {
	var b BroadcastSummary
	var last []time.Duration
	for k, d := range sent {
		if k[0] == '-' {
			continue
		}
		if d.N == 0 {
			b.Failed++
			continue
		}
		b.Sent++
		b.Expected += n
		got, slowest := 0, time.Duration(0)
		for _, h := range hosts {
			hd := pick(h)[k]
			got += hd.N
			slowest = max(slowest, hd.Max)
		}
		b.Delivered += got
		if got >= n {
			last = append(last, slowest)
		} else {
			inc := Incomplete{Seq: k, At: d.At, Got: got}
			for _, h := range hosts {
				inc.PerHost = append(inc.PerHost, pick(h)[k].N)
			}
			b.Incomplete = append(b.Incomplete, inc)
		}
	}
	slices.SortFunc(b.Incomplete, func(a, b Incomplete) int { return cmp.Compare(a.At, b.At) })
	b.Lost = max(b.Expected-b.Delivered, 0)
	s := latency.Summarize(last)
	b.LastP50 = s.P50
	if len(last) > 0 {
		b.LastMax = slices.Max(last)
	}
	return b
}

// Connections returns, from a measurement, the TCP connections between
// the run's processes (ZeroMQ: each has an end in two of them) and to
// Redis.
func Connections(us []Usage) (zmq, redis int) {
	ends := 0
	for _, u := range us {
		if u.Role == roleRedis {
			redis = u.TCP
			continue
		}
		ends += u.TCP - u.TCPRedis
	}
	return ends / 2, redis
}

// ComputeRSS returns the RSS of the host processes together and per
// compute node.
func ComputeRSS(us []Usage) (total, perNode int64) {
	nodes := 0
	for _, u := range us {
		if u.Role == RoleCompute {
			total += u.RSS
			nodes += u.Nodes
		}
	}
	if nodes > 0 {
		perNode = total / int64(nodes)
	}
	return total, perNode
}

// Write prints the report as text.
func (r *Report) Write(w io.Writer) {
	fmt.Fprintf(w, "node scale: %d compute nodes in %d processes + %d control nodes, %s mode", r.Nodes, r.Procs, r.Control, r.Mode)
	if r.Mode == ModeProxied {
		fmt.Fprintf(w, " (%d router proxies, %d central + %d local publisher proxies)", r.Routers, r.Publishers, r.LocalPubs)
	}
	fmt.Fprintf(w, "; heartbeats %v, timeout %v", r.Heartbeat, r.HBTimeout)
	fmt.Fprintf(w, "\nload average %s at the start, %s at the end, CPU pressure (some, avg60) %s%%; logs in %s\n\n",
		r.LoadAverage[0], r.LoadAverage[1], r.CPUPressure, r.Dir)
	s := r.Storm
	fmt.Fprintf(w, "registration storm (every process launched at once): %d nodes started after %v (slowest process %v);\n",
		s.NodesStarted, ms(s.Started), ms(s.SlowestHost))
	fmt.Fprintf(w, "  all registered after %v, all answer a directed call after %v, a fanout and a notification reach all after %v\n",
		ms(s.Registered), ms(s.Reachable), ms(s.Settled))
	fmt.Fprintf(w, "  Redis until all registered: %d commands (%d PUBLISH), %.0f/s on average, %.0f/s at the peak (250 ms samples); %d listen overflows\n",
		s.RedisCommands, s.Published, s.OpsPerSec, s.PeakOpsPerSec, s.ListenOverflows)
	for _, n := range append(s.StartErrors, s.Notes...) {
		fmt.Fprintf(w, "  ! %s\n", n)
	}
	fmt.Fprintf(w, "\nload for %v:\n", ms(r.Took))
	writeCalls(w, "compute → conductor calls", r.ComputeCalls, r.Took)
	writeCalls(w, "api → compute calls", r.APICalls, r.Took)
	fmt.Fprintf(w, "  scheduler → compute casts: %d sent, %d failed, %d received, %d reported undelivered to their sender and %d possibly lost (connection dropped), %d unaccounted for\n",
		r.CastsSent, r.CastsFailed, r.CastsGot, r.CastsUndelivered, r.CastsMaybeLost, max(r.CastsSent-r.CastsGot-r.CastsUndelivered-r.CastsMaybeLost, 0))
	r.writeBroadcasts(w, "fanouts to every compute", r.Fanouts)
	r.writeBroadcasts(w, "notifications to every compute", r.Notes)
	r.Churn.write(w)
	fmt.Fprintf(w, "  sends skipped (every worker busy): %d; dropped or failed in the nodes' Stats: %d\n", r.Skipped, r.Dropped)
	writeCounts(w, "control plane's Stats", r.ControlCounters)
	writeCounts(w, "computes' Stats", r.ComputeCounters)
	fmt.Fprintf(w, "    actor restarts: %d\n", r.Restarts)
	writeCounts(w, "reported undelivered (WithUndelivered)", r.Undelivered)
	r.writeTimeline(w)
	if a := r.AfterLoad; a.Of > 0 {
		fmt.Fprintf(w, "  after the load: %d of %d computes answered a directed call (%v)", a.Answered, a.Of, ms(a.Took))
		if a.Answered < a.Of {
			fmt.Fprintf(w, "; missing by process %v; first: %s", a.ByHost, a.First)
		}
		fmt.Fprintln(w)
	}
	a := r.Redis.After
	fmt.Fprintf(w, "  Redis: %.0f commands/s, %.1f MiB used, %d clients, %d keys, %.1f s CPU over the load; %d listen overflows\n",
		r.Redis.OpsPerSec, float64(a.UsedMemory)/(1<<20), a.Clients, a.Keys, a.CPU-r.Redis.Before.CPU, r.ListenOverflows)
	fmt.Fprintf(w, "  Redis commands/s by name: %s\n", r.Redis.top(8, r.Took))
	zmq, redis := Connections(r.End)
	total, per := ComputeRSS(r.End)
	fmt.Fprintf(w, "\nat the end: %d ZeroMQ TCP connections, %d to Redis; compute processes' RSS %.0f MiB (%.2f MiB per node)\n",
		zmq, redis, float64(total)/(1<<20), float64(per)/(1<<20))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "process\trole\tnodes\tfds\tthreads\tRSS MiB\tTCP\tto Redis\tCPU %\t")
	for _, u := range r.End {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%.1f\t%d\t%d\t%.0f\t\n", u.Name, u.Role, u.Nodes, u.FDs, u.Threads,
			float64(u.RSS)/(1<<20), u.TCP, u.TCPRedis, u.CPUPercent)
	}
	tw.Flush()
	for _, n := range r.Remarks {
		fmt.Fprintf(w, "! %s\n", n)
	}
}

// top names the n commands Redis ran most over the load, with their rate.
func (l RedisLoad) top(n int, took time.Duration) string {
	type rate struct {
		name string
		d    int64
	}
	var rs []rate
	for k, v := range l.After.Calls {
		if d := v - l.Before.Calls[k]; d > 0 {
			rs = append(rs, rate{k, d})
		}
	}
	slices.SortFunc(rs, func(a, b rate) int { return int(b.d - a.d) })
	var parts []string
	for i, r := range rs {
		if i == n {
			break
		}
		parts = append(parts, fmt.Sprintf("%s %.0f", r.name, float64(r.d)/took.Seconds()))
	}
	return strings.Join(parts, ", ")
}

func writeCalls(w io.Writer, what string, c CallSummary, took time.Duration) {
	fmt.Fprintf(w, "  %s: %d ok (%.0f/s), %d failed; p50 %v, p99 %v\n", what, c.N, float64(c.N)/took.Seconds(), c.Failed, us(c.P50), us(c.P99))
	for _, k := range slices.Sorted(maps.Keys(c.Errors)) {
		fmt.Fprintf(w, "      %d × %s\n", c.Errors[k], k)
	}
}

func (r *Report) writeBroadcasts(w io.Writer, what string, b BroadcastSummary) {
	fmt.Fprintf(w, "  %s: %d sent (%d failed to send), %d of %d deliveries, %d lost; last receiver p50 %v, max %v\n",
		what, b.Sent, b.Failed, b.Delivered, b.Expected, b.Lost, ms(b.LastP50), ms(b.LastMax))
	for _, inc := range b.Incomplete {
		fmt.Fprintf(w, "      #%s, sent %v into the load: reached %d (by host process: %v)\n",
			inc.Seq, ms(time.Duration(inc.At-r.LoadStart)), inc.Got, inc.PerHost)
	}
}

// writeTimeline prints the seconds of the load with failed calls or churn
// events, when some call failed.
func (r *Report) writeTimeline(w io.Writer) {
	failed := false
	for _, s := range r.Timeline {
		failed = failed || s.ComputeFailed+s.APIFailed > 0
	}
	if !failed {
		return
	}
	var parts []string
	for _, s := range r.Timeline {
		if s.ComputeFailed+s.APIFailed == 0 && len(s.Churn) == 0 {
			continue
		}
		p := fmt.Sprintf("%ds %d/%d", s.At, s.ComputeFailed, s.APIFailed)
		if len(s.Churn) > 0 {
			p += " " + strings.Join(s.Churn, "")
		}
		parts = append(parts, p)
	}
	fmt.Fprintf(w, "    failed calls by the second they were sent in (compute → conductor/api → compute; churn +joined -left xclosed): %s\n", strings.Join(parts, ", "))
}

// writeCounts prints counts by name, in name order, on one line.
func writeCounts[V int64 | uint64](w io.Writer, what string, m map[string]V) {
	if len(m) == 0 {
		return
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	fmt.Fprintf(w, "    %s: %s\n", what, strings.Join(parts, ", "))
}

func ms(d time.Duration) time.Duration { return d.Round(time.Millisecond) }

func us(d time.Duration) string {
	if d >= 10*time.Millisecond {
		return d.Round(100 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
}
