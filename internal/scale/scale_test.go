package scale

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/relay-dev/relay"
)

// stormBound is how soon after the host processes are launched every
// compute of a test run must be registered and answer a directed call.
// Measured (docs/SCALE.md): 200 nodes in about 1.5-4 s and 500 in 2-5 s
// on the 2-core machine with a load average of 8-14; the bound leaves
// room for a busier machine and the race detector.
const stormBound = 45 * time.Second

// testLog writes progress lines to the test's log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// testConfig is a short run of n nodes in procs processes.
func testConfig(t *testing.T, mode string, n, procs int, d time.Duration) Config {
	cfg := DefaultConfig()
	cfg.Mode, cfg.Nodes, cfg.Procs, cfg.Duration = mode, n, procs, d
	cfg.NodeBin, cfg.Dir, cfg.Log = nodeBin, t.TempDir(), testLog{t}
	cfg.StartTimeout = stormBound
	return cfg
}

// run runs cfg and logs its report.
func run(t *testing.T, cfg Config) *Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	rep.Write(&b)
	t.Logf("\n%s", b.String())
	return rep
}

// A shortened scale run: 200 compute nodes in 2 processes and the control
// plane, direct, 10 s of mixed load. Every node registers and answers
// within stormBound (Run fails otherwise); every call, cast, fanout and
// notification of the load arrives; every process is measured.
func TestShortRun(t *testing.T) {
	cfg := testConfig(t, ModeDirect, 200, 2, 10*time.Second)
	rep := run(t, cfg)
	checkDelivered(t, rep)
	checkMeasured(t, rep, 2)
	checkChurn(t, rep)
}

// checkChurn: conductors joined and left during the load; calls reached
// every joiner but perhaps the last (it may join just before the end),
// and stopped reaching a leaver before the next churn closed it (or they
// would have timed out: checkDelivered).
func checkChurn(t *testing.T, rep *Report) {
	t.Helper()
	c := rep.Churn
	if c.Joins < 2 || c.Leaves < 1 || c.JoinNever > 1 || c.JoinP50 <= 0 {
		t.Errorf("churn every %v over %v: %+v; want 2 or more joins, each but the last reached, and a leave", c.Every, rep.Took, c)
	}
	if c.LeaveMax >= c.Every {
		t.Errorf("calls reached a leaver %v after it left, want within the churn period %v", c.LeaveMax, c.Every)
	}
}

// The same through the proxies, smaller: 60 nodes in 2 processes, 2
// router proxies, a central and 2 local publisher proxies (two-level
// fanout).
func TestShortRunProxied(t *testing.T) {
	cfg := testConfig(t, ModeProxied, 60, 2, 5*time.Second)
	rep := run(t, cfg)
	checkDelivered(t, rep)
	checkMeasured(t, rep, 2+cfg.Routers+cfg.Publishers+cfg.Procs)
	zmq, _ := Connections(rep.End)
	// Through proxies a compute holds about 5 connections (2 router backs,
	// 2 fronts, its local publisher), whoever it talks to.
	if max := 6*cfg.Nodes + 50; zmq > max {
		t.Errorf("%d ZeroMQ connections for %d nodes through proxies, want at most %d", zmq, cfg.Nodes, max)
	}
}

// The registration storm: 500 compute nodes in 4 processes launched at
// once. Every one is listed under the compute topic and answers a directed
// call within stormBound (Run fails otherwise), and Redis saw it.
func TestRegistrationStorm(t *testing.T) {
	cfg := testConfig(t, ModeDirect, 500, 4, time.Second)
	cfg.CallRate, cfg.APIRate, cfg.CastRate, cfg.FanoutEvery = 0, 0, 0, time.Hour
	rep := run(t, cfg)
	s := rep.Storm
	if s.NodesStarted != cfg.Nodes || len(s.StartErrors) > 0 {
		t.Errorf("%d of %d nodes started: %v", s.NodesStarted, cfg.Nodes, s.StartErrors)
	}
	if s.Registered <= 0 || s.Reachable < s.Registered || s.Reachable > stormBound {
		t.Errorf("registered after %v, reachable after %v: want 0 < registered <= reachable <= %v", s.Registered, s.Reachable, stormBound)
	}
	// Each node registers its entries in one batch: at least one command
	// a node, and the storm is counted.
	if s.RedisCommands < int64(cfg.Nodes) || s.OpsPerSec <= 0 || s.PeakOpsPerSec <= 0 {
		t.Errorf("Redis during the storm: %d commands, %.0f/s, peak %.0f/s", s.RedisCommands, s.OpsPerSec, s.PeakOpsPerSec)
	}
}

// checkDelivered: the load's calls and casts all succeeded, and every
// fanout and notification reached every compute.
func checkDelivered(t *testing.T, rep *Report) {
	t.Helper()
	for what, c := range map[string]CallSummary{"compute → conductor": rep.ComputeCalls, "api → compute": rep.APICalls} {
		if c.N == 0 || c.Failed > 0 {
			t.Errorf("%s calls: %d ok, %d failed %v", what, c.N, c.Failed, c.Errors)
		}
	}
	if rep.CastsSent == 0 || rep.CastsFailed > 0 || rep.CastsGot != rep.CastsSent {
		t.Errorf("casts: %d sent, %d failed, %d received", rep.CastsSent, rep.CastsFailed, rep.CastsGot)
	}
	for what, b := range map[string]BroadcastSummary{"fanouts": rep.Fanouts, "notifications": rep.Notes} {
		if b.Sent == 0 || b.Failed > 0 || b.Lost > 0 || b.Delivered != b.Sent*rep.Nodes {
			t.Errorf("%s: %+v", what, b)
		}
	}
	if rep.Storm.Settled <= 0 {
		t.Errorf("no probe fanout reached every compute: %v", rep.Storm.Notes)
	}
	if len(rep.Undelivered) > 0 {
		t.Errorf("messages reported undelivered: %v", rep.Undelivered)
	}
	if a := rep.AfterLoad; a.Of != rep.Nodes || a.Answered != a.Of {
		t.Errorf("after the load %d of %d computes answered a directed call (want all %d): %v %s", a.Answered, a.Of, rep.Nodes, a.ByHost, a.First)
	}
}

// checkMeasured: every process of the run was measured, and the figures
// add up.
func checkMeasured(t *testing.T, rep *Report, children int) {
	t.Helper()
	if want := children + 2; len(rep.End) != want { // + the control process and Redis
		t.Errorf("%d processes measured, want %d: %+v", len(rep.End), want, rep.End)
	}
	nodes := 0
	for _, u := range rep.End {
		if u.FDs <= 0 || u.RSS <= 0 || u.Threads <= 0 || u.CPU <= 0 {
			t.Errorf("usage of %s: %+v", u.Name, u)
		}
		if u.Role == RoleCompute {
			nodes += u.Nodes
			if u.TCP <= 0 || u.TCPRedis <= 0 {
				t.Errorf("%s holds %d TCP sockets, %d to Redis", u.Name, u.TCP, u.TCPRedis)
			}
		}
	}
	if nodes != rep.Nodes {
		t.Errorf("compute processes hold %d nodes, want %d", nodes, rep.Nodes)
	}
	zmq, redis := Connections(rep.End)
	if zmq <= 0 || redis < rep.Nodes {
		t.Errorf("connections: %d ZeroMQ, %d to Redis (for %d nodes)", zmq, redis, rep.Nodes)
	}
	if total, per := ComputeRSS(rep.End); total <= 0 || per <= 0 {
		t.Errorf("compute RSS %d, per node %d", total, per)
	}
	if rep.Redis.OpsPerSec <= 0 || rep.Redis.After.Clients <= 0 {
		t.Errorf("Redis over the load: %+v", rep.Redis)
	}
}

// The churn's figures from the control plane's joins and leaves and the
// refusals the computes saw, each matched to its leaver by host.
func TestChurnReport(t *testing.T) {
	sec := int64(time.Second)
	cs := []Churn{
		{Host: "scale-churn-0", Joined: 0, First: sec / 10, Left: 3 * sec},
		{Host: "scale-churn-1", Joined: 3 * sec, First: 3*sec + sec/5, Left: 6 * sec},
		{Host: "scale-churn-2", Joined: 6 * sec},
	}
	refused := func(host string) string {
		err := fmt.Errorf("%w: method %q: host %s serves no topic conductor for server %q", relay.ErrNoSuchMethod, MethodReport, host, "")
		return refusedBy(err)
	}
	hosts := []HostReport{
		{Stale: []Stale{{Sent: 3*sec + sec/2, Host: refused("scale-churn-0")}, {Sent: 6*sec - 1, Host: refused("scale-churn-1")}}},
		{Stale: []Stale{{Sent: 6*sec + sec/10, Host: refused("scale-churn-1")}}},
	}
	got := churnReport(3*time.Second, cs, hosts)
	want := ChurnReport{Every: 3 * time.Second, Joins: 3, JoinNever: 1, JoinP50: 100 * time.Millisecond, JoinMax: 200 * time.Millisecond,
		Leaves: 2, Stale: 2, InFlight: 1, LeaveP50: 100 * time.Millisecond, LeaveMax: 500 * time.Millisecond}
	if got != want {
		t.Errorf("churn report\n got %+v\nwant %+v", got, want)
	}
	if h := refusedBy(errors.New(`relay: no such method: method "x" (ns="" v="1.0") not served on topic t by host h1 (serving ns="a" v="1.0")`)); h != "h1" {
		t.Errorf("refused by %q, want h1", h)
	}
}
