package e2e_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/relay-dev/relay/internal/testutil"
	"log/slog"
	"net"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/relay-dev/relay"
	"github.com/relay-dev/relay/internal/demo"
	"github.com/relay-dev/relay/internal/testredis"
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

// proc is a `node serve` process in its own process group.
type proc struct {
	t    testing.TB
	host string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{} // closed when the process has been reaped
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
	cmd := exec.Command(nodeBin, args...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = time.Second // the output copiers, should a child hold the pipe
	if err := cmd.Start(); err != nil {
		t.Fatalf("start node %s %s: %v", args[0], host, err)
	}
	p := &proc{t: t, host: host, cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("node %s %s (%s) output:\n%s", args[0], host, cmd.ProcessState, out.String())
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
		select {
		case <-p.done:
			return fmt.Errorf("node serve %s exited: %s", p.host, p.cmd.ProcessState)
		default:
		}
		_, err := get(client, p.host)
		return err
	})
}

// signal sends sig to the process group.
func (p *proc) signal(sig syscall.Signal) {
	_ = syscall.Kill(-p.cmd.Process.Pid, sig)
}

// stop sends SIGTERM, then SIGKILL if the process has not exited within
// stopGrace, and waits until it is reaped. It reports an error exit after
// SIGTERM. Stopping a stopped process does nothing.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if !p.cmd.ProcessState.Success() {
			p.t.Errorf("node serve %s exited with %s after SIGTERM", p.host, p.cmd.ProcessState)
		}
		return
	case <-time.After(stopGrace):
	}
	p.t.Errorf("node serve %s did not exit within %v of SIGTERM; killing it", p.host, stopGrace)
	p.kill9()
}

// kill9 sends SIGKILL and waits until the process is reaped.
func (p *proc) kill9() {
	p.signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.t.Errorf("node serve %s not reaped 10s after SIGKILL", p.host)
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

// startNode starts a client node "tester" on redisURL; closeNode closes it,
// printing its log if the test has failed.
func startNode(t testing.TB, redisURL string) (n *relay.Node, closeNode func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	logs := &syncBuffer{}
	n, err := relay.Start(ctx, relay.WithMatchmaker(redisURL), relay.WithHost("tester"),
		relay.WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
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
	bindable := func(addrs []string) error {
		for _, h := range addrs {
			l, err := net.Listen("tcp", net.JoinHostPort(h, "0"))
			if err != nil {
				return fmt.Errorf("cannot bind %s (%v): these tests need the loopback "+
					"addresses %s; on Linux all of 127.0.0.0/8 is local, elsewhere add aliases "+
					"(macOS: sudo ifconfig lo0 alias 127.0.0.2 up, and so on)", h, err, strings.Join(append(hosts, extra...), ", "))
			}
			l.Close()
		}
		return nil
	}
	loopbackOnce.Do(func() { loopbackOnce.err = bindable(hosts) })
	if loopbackOnce.err != nil {
		t.Fatal(loopbackOnce.err)
	}
	if err := bindable(extra); err != nil {
		t.Fatal(err)
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

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
