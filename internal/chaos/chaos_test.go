package chaos

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A short chaos run: real processes, a real Redis, faults from a seed.
// What must hold today is asserted (Report.Violations: no call
// unresolved, every call ended by its deadline with its own outcome, no
// acked cast lost without a report to its sender, no process crashed but
// those killed); the rest is printed. The seed is
// random, and picks the mode, unless RELAY_CHAOS_SEED (and
// RELAY_CHAOS_MODE) say otherwise; a failure prints the command that
// repeats its faults.
func TestShortRun(t *testing.T) {
	seed := time.Now().UnixNano()%1_000_000 + 1
	if s := os.Getenv("RELAY_CHAOS_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseInt(s, 10, 64); err != nil {
			t.Fatalf("RELAY_CHAOS_SEED=%q: %v", s, err)
		}
	}
	cfg := DefaultConfig()
	cfg.Seed, cfg.Duration, cfg.NodeBin, cfg.Dir = seed, 20*time.Second, nodeBin, t.TempDir()
	cfg.ServeArgs = []string{"--data-dir={dir}"} // acked casts survive the kills
	cfg.Mode = Modes[seed%int64(len(Modes))]
	if m := os.Getenv("RELAY_CHAOS_MODE"); m != "" {
		cfg.Mode = m
	}
	// Under the race detector the client nodes in this process run slower:
	// a call may end a little later after its deadline.
	cfg.LateAfter = time.Second
	cfg.Log = testLog{t}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	rep.Write(&b)
	t.Logf("\n%s", b.String())
	for _, v := range rep.Violations() {
		t.Error(v)
	}
	if t.Failed() {
		t.Logf("repeat its faults: %s (or RELAY_CHAOS_SEED=%d RELAY_CHAOS_MODE=%s go test -run TestShortRun ./internal/chaos)",
			rep.Command(), seed, cfg.Mode)
	}
}

// testLog writes progress lines to the test's log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
