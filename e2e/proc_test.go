package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/relay-dev/relay"
	"github.com/relay-dev/relay/internal/demo"
	procpkg "github.com/relay-dev/relay/internal/proc"
	"github.com/relay-dev/relay/internal/testredis"
	"github.com/relay-dev/relay/internal/testutil"
	"github.com/relay-dev/relay/matchmaker"
)

const (
	topic = "compute"
	// ttl is the registration TTL of the served nodes; they renew every
	// ttl/3.
	ttl = 3 * time.Second
	// stopGrace is how long a process has to exit after SIGTERM before it
	// is killed.
	stopGrace = 5 * time.Second
)

// hosts are the three servers' host names, which are also their bind
// addresses: all of 127/8 is local on Linux.
var hosts = []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}

// proc is a node process in its own process group.
type proc struct {
	*procpkg.Process
	t    testing.TB
	host string
	out  *testutil.SyncBuffer
}

// launchServe runs `node serve` for host (advertised as host, bound to
// bindAddr) on the topic with a registration TTL of ttl, and stops it when
// the test ends (see launch); waitRegistered waits until it is reachable.
func launchServe(t testing.TB, redisURL, host, bindAddr string, extra ...string) *proc {
	t.Helper()
	args := append([]string{"serve", "--matchmaker", redisURL, "--host", host, "--bind", bindAddr,
		"--topic", topic, "--ttl", ttl.String()}, extra...)
	return launch(t, host, args...)
}

// launch runs the node binary with args as a process named name, stopped
// (SIGTERM, then SIGKILL) when the test ends; its output is logged if the
// test fails.
func launch(t testing.TB, host string, args ...string) *proc {
	t.Helper()
	out := &testutil.SyncBuffer{}
	pp, err := procpkg.Start("node "+args[0]+" "+host, out, nodeBin, args...)
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{Process: pp, t: t, host: host, out: out}
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("%s (%s) output:\n%s", p.Name, p.State(), out.String())
		}
	})
	return p
}

// waitRegistered waits until a client node on redisURL reaches the process
// with a directed get.
func (p *proc) waitRegistered(redisURL string) {
	p.t.Helper()
	client, closeClient := startNode(p.t, redisURL)
	defer closeClient()
	waitFor(p.t, 15*time.Second, func() error {
		if p.Exited() {
			return fmt.Errorf("%s exited: %s", p.Name, p.State())
		}
		_, err := get(client, p.host)
		return err
	})
}

// stop sends SIGTERM, then SIGKILL if the process has not exited within
// stopGrace, and waits until it is reaped. It reports an error exit after
// SIGTERM. Stopping a stopped process does nothing.
func (p *proc) stop() {
	if p.Exited() {
		return
	}
	if err := p.Stop(stopGrace); err != nil {
		p.t.Error(err)
	}
}

// kill9 sends SIGKILL and waits until the process is reaped.
func (p *proc) kill9() {
	if err := p.Kill(); err != nil {
		p.t.Error(err)
	}
}

// newClient starts the in-test client node "tester" on redisURL and closes
// it when the test ends. Its log is printed if the test fails.
func newClient(t testing.TB, redisURL string) *relay.Node {
	t.Helper()
	n, closeNode := startNode(t, redisURL)
	t.Cleanup(closeNode)
	return n
}

// startNode starts a client node "tester" on redisURL, with opts; closeNode
// closes it, printing its log if the test has failed.
func startNode(t testing.TB, redisURL string, opts ...relay.Option) (n *relay.Node, closeNode func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	logs := &testutil.SyncBuffer{}
	n, err := relay.Start(ctx, append([]relay.Option{relay.WithMatchmaker(redisURL), relay.WithHost("tester"),
		relay.WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))}, opts...)...)
	if err != nil {
		t.Fatalf("start client node on %s: %v", redisURL, err)
	}
	return n, func() {
		if err := n.Close(); err != nil {
			t.Errorf("close client node: %v", err)
		}
		if t.Failed() {
			t.Logf("client node stats: %+v\nlog:\n%s", n.Stats(), logs.String())
		}
	}
}

// startCluster checks the loopback addresses, then starts a Redis, one
// `node serve` per entry of hosts (in parallel) and the in-test client.
func startCluster(t *testing.T) (rs *testredis.Server, client *relay.Node, procs map[string]*proc) {
	t.Helper()
	checkLoopback(t)
	rs = testredis.Start(t)
	procs = map[string]*proc{}
	for _, h := range hosts {
		procs[h] = launchServe(t, rs.URL(), h, h)
	}
	for _, h := range hosts {
		procs[h].waitRegistered(rs.URL())
	}
	return rs, newClient(t, rs.URL()), procs
}

// target returns the topic directed at host, or bare when host is "".
func target(host string) relay.Target {
	return relay.Target{Topic: topic, Server: host}
}

// get returns the state of host's demo endpoint, with a 1s deadline.
func get(client *relay.Node, host string) (demo.State, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var st demo.State
	err := client.Call(ctx, target(host), "get", nil, &st)
	if err == nil && st.Host != host {
		err = fmt.Errorf("directed get on %s answered by %q", host, st.Host)
	}
	return st, err
}

// counters returns each host's counter, failing the test on an error.
func counters(t testing.TB, client *relay.Node) map[string]int64 {
	t.Helper()
	m := map[string]int64{}
	for _, h := range hosts {
		st, err := get(client, h)
		if err != nil {
			t.Fatalf("get on %s: %v", h, err)
		}
		m[h] = st.Int
	}
	return m
}

var loopbackOnce struct {
	sync.Once
	err error
}

// checkLoopback fails the test unless every address of hosts, and of
// extra, can be bound.
func checkLoopback(t testing.TB, extra ...string) {
	t.Helper()
	loopbackOnce.Do(func() { loopbackOnce.err = procpkg.CheckLoopback(hosts...) })
	if loopbackOnce.err != nil {
		t.Fatal(loopbackOnce.err)
	}
	if len(extra) > 0 {
		if err := procpkg.CheckLoopback(extra...); err != nil {
			t.Fatal(err)
		}
	}
}

// waitFor calls f until it returns nil, failing the test with f's last
// error if timeout passes first.
func waitFor(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	testutil.WaitFor(t, timeout, f)
}

// errKind names an error for the counts the tests print.
func errKind(err error) string {
	var re *relay.RemoteError
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, relay.ErrTimeout):
		return "ErrTimeout"
	case errors.Is(err, relay.ErrNoServers):
		return "ErrNoServers"
	case errors.Is(err, relay.ErrBackPressure):
		return "ErrBackPressure"
	case errors.Is(err, relay.ErrClosed):
		return "ErrClosed"
	case errors.Is(err, relay.ErrNoSuchMethod):
		return "ErrNoSuchMethod"
	case errors.As(err, &re):
		return "RemoteError " + re.Code
	case errors.Is(err, context.DeadlineExceeded):
		return "context.DeadlineExceeded"
	}
	return "untyped"
}

// waitMembers waits until each key has at least its count of members
// registered in the matchmaker at mm: processes that need them (nodes in
// router-proxy or pub/sub mode need the proxies) start only then.
func waitMembers(t *testing.T, mm string, want map[matchmaker.Key]int) {
	t.Helper()
	m, err := matchmaker.Open(mm)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	waitFor(t, 15*time.Second, func() error {
		for k, n := range want {
			got, err := m.Lookup(context.Background(), k)
			if err != nil || len(got) < n {
				return fmt.Errorf("%s: %v, %v; want %d registered", k, got, err, n)
			}
		}
		return nil
	})
}
