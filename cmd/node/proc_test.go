package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relay-dev/relay/internal/testutil"
)

// nodeBin is the node binary that TestMain builds (with -race when the
// tests run with it), so that every test runs the command as a user does.
var nodeBin string

func TestMain(m *testing.M) { testutil.MainWithNode(m, "../..", raceEnabled, &nodeBin) }

// result is what a finished node process did.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
}

// env is the environment of node processes: the test's without any
// RELAY_* variable, plus extra.
func env(extra ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "RELAY_") {
			out = append(out, kv)
		}
	}
	return append(out, extra...)
}

// runNode runs node with args to completion (at most a minute) and
// returns what it did.
func runNode(t testing.TB, args ...string) result {
	t.Helper()
	return runNodeWith(t, "", nil, args...)
}

// runNodeWith is runNode with stdin and extra environment variables.
func runNodeWith(t testing.TB, stdin string, extraEnv []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, nodeBin, args...)
	cmd.Env = env(extraEnv...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.Exited():
		r.code = ee.ExitCode()
	default:
		t.Fatalf("node %q: %v (%s)", args, err, r)
	}
	return r
}

// proc is a node process running in the background.
type proc struct {
	t              testing.TB
	args           []string
	cmd            *exec.Cmd
	stdout, stderr *testutil.SyncBuffer
	done           chan struct{} // closed once the process is reaped
}

// spawn starts node with args in the background. At the end of the test
// it is stopped with SIGTERM (and must then exit 0) or, after 10 s,
// killed; its output is logged if the test failed.
func spawn(t testing.TB, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(nodeBin, args...)
	cmd.Env = env()
	p := &proc{t: t, args: args, cmd: cmd, stdout: &testutil.SyncBuffer{}, stderr: &testutil.SyncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start node %q: %v", args, err)
	}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("node %q (%s):\nstdout:\n%s\nstderr:\n%s", args, cmd.ProcessState, p.stdout, p.stderr)
		}
	})
	return p
}

// waitLog waits until the process has written want to stderr.
func (p *proc) waitLog(want string) {
	p.t.Helper()
	testutil.WaitFor(p.t, 30*time.Second, func() error {
		if strings.Contains(p.stderr.String(), want) {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("node %q exited (%s) before logging %q", p.args, p.cmd.ProcessState, want)
		default:
			return fmt.Errorf("node %q has not logged %q yet", p.args, want)
		}
	})
}

// wait waits (at most 30 s) for the process to exit by itself and returns
// its exit code.
func (p *proc) wait() int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(30 * time.Second):
		p.t.Fatalf("node %q did not exit within 30s", p.args)
		return -1
	}
}

// stop sends SIGTERM, kills the process if it has not exited within 10 s,
// and reports an exit other than 0 after SIGTERM. Stopping an exited
// process does nothing.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if code := p.cmd.ProcessState.ExitCode(); code != 0 {
			p.t.Errorf("node %q exited %d after SIGTERM", p.args, code)
		}
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		p.t.Errorf("node %q did not exit within 10s of SIGTERM", p.args)
	}
}

// expect fails the test unless r exited with code and its stderr holds
// every one of want.
func expect(t testing.TB, r result, code int, want ...string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit %d, want %d (%s)", r.code, code, r)
		return
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr lacks %q (%s)", w, r)
		}
	}
}
