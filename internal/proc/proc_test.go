package proc

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/relay-dev/relay/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Stop is clean for a process that exits 0 on SIGTERM, an error for one
// that does not; Kill reaps at once; both leave no goroutine behind.
func TestStopAndKill(t *testing.T) {
	var out testutil.SyncBuffer
	clean, err := Start("clean", &out, "sh", "-c", `trap "echo bye; exit 0" TERM; echo up; while :; do sleep 0.05; done`)
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, func() error { // until the shell has set its trap
		if !strings.Contains(out.String(), "up") {
			return errors.New("not up yet")
		}
		return nil
	})
	if err := clean.Stop(5 * time.Second); err != nil {
		t.Errorf("stop of a process that exits 0 on SIGTERM: %v", err)
	}
	if !clean.Exited() || !clean.State().Success() {
		t.Errorf("after Stop: exited %v, state %v", clean.Exited(), clean.State())
	}

	stubborn, err := Start("stubborn", nil, "sleep", "30")
	if err != nil {
		t.Fatal(err)
	}
	if stubborn.State() != nil {
		t.Errorf("a running process has a state: %v", stubborn.State())
	}
	if err := stubborn.Stop(5 * time.Second); err == nil || !strings.Contains(err.Error(), "stubborn exited with signal: terminated") {
		t.Errorf("stop of sleep: %v; want an error saying it exited on SIGTERM", err)
	}

	victim, err := Start("victim", nil, "sleep", "30")
	if err != nil {
		t.Fatal(err)
	}
	u, err := ReadUsage(victim.Pid())
	if err != nil || u.FDs < 3 || u.RSS <= 0 || u.PeakRSS < u.RSS || u.Threads < 1 {
		t.Errorf("usage of sleep: %+v, %v", u, err)
	}
	if err := victim.Kill(); err != nil {
		t.Fatal(err)
	}
	if st := victim.State(); st == nil || st.String() != "signal: killed" {
		t.Errorf("after Kill: %v", st)
	}
	if _, err := Start("missing", nil, filepath.Join(t.TempDir(), "no-such-binary")); err == nil {
		t.Errorf("a missing binary started")
	}
}

func TestHelpers(t *testing.T) {
	if err := CheckLoopback("127.0.0.1", "127.0.0.2"); err != nil {
		t.Errorf("loopback: %v", err)
	}
	if err := CheckLoopback("192.0.2.1"); err == nil || !strings.Contains(err.Error(), "127.0.0.0/8") {
		t.Errorf("an address not of this host: %v; want an error with the hint", err)
	}
	p, err := FreePort("127.0.0.1")
	if err != nil || p <= 0 {
		t.Errorf("free port: %d, %v", p, err)
	}
	ps, err := FreePorts("127.0.0.1", 3)
	if err != nil || len(ps) != 3 || ps[0] == ps[1] || ps[1] == ps[2] || ps[0] == ps[2] {
		t.Errorf("3 free ports: %v, %v; want 3 distinct", ps, err)
	}
	path := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(path, []byte("a\nb\nc\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := Tail(path, 2); got != "b\nc" {
		t.Errorf("tail 2 of a, b, c: %q", got)
	}
	if got := LoadAverage(); len(strings.Fields(got)) != 3 {
		t.Errorf("load average %q", got)
	}
}
