package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/relay-dev/relay/internal/bench"
)

// tinyBench is a node bench command line that runs in seconds.
var tinyBench = []string{"bench", "--rounds", "2", "--n", "20", "--calls", "40", "--casts", "40", "--flood", "100",
	"--pending", "40", "--fanouts", "10"}

// node bench prints the machine and its load, one line per row with its
// figures, target and verdict, and says how to measure row 7; it exits 0
// when it ran. Nothing is asserted about speed.
func TestBenchReport(t *testing.T) {
	r := runNode(t, tinyBench...)
	if r.code != 0 {
		t.Fatalf("bench: %s", r)
	}
	for _, want := range []string{"GOMAXPROCS", "load average", "at start", "at end", "2 rounds, interleaved",
		"row 7: gRPC unary p50 not given: run `" + bench.PeersGRPCCommand + "`", "row 4, flood", "row 8, cost",
		"row 9, memory", "fanout to 10 servers", "targets: "} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("bench output lacks %q:\n%s", want, r.stdout)
		}
	}
	// One line per row, each ending in its verdict (or "-" for p99).
	lines := strings.Split(r.stdout, "\n")
	for _, key := range []string{"call p50", "call p99", "callers, calls/s", "casts/s at the receiver", "flood of 100 casts",
		"notify msgs/s", "router proxy / direct", "same-process call p50", "cgo calls per call", "allocations per call",
		"heap per idle node", "heap per pending call"} {
		var line string
		for _, l := range lines {
			if strings.Contains(l, key) {
				line = strings.TrimSpace(l)
				break
			}
		}
		ok := strings.HasSuffix(line, " met") || strings.HasSuffix(line, " not measured") || key == "call p99" && strings.HasSuffix(line, " -")
		if !ok {
			t.Errorf("row %q: line %q, want it ending with its verdict", key, line)
		}
	}
	if !strings.Contains(r.stderr, "round 2/2, row 9, relay") {
		t.Errorf("progress on stderr lacks round 2's steps:\n%s", r.stderr)
	}
}

// --json prints the report; --check exits 3 and names each missed target
// (row 7 against an impossible 1 ns gRPC p50 is always missed).
func TestBenchJSONCheck(t *testing.T) {
	r := runNode(t, append(tinyBench, "--json", "--check", "--grpc-p50", "1ns")...)
	expect(t, r, exitTargetsMissed, "node bench: target not met: same-process call p50: relay / gRPC unary: want ≤ 1.0×")
	var rep bench.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("stdout is not a JSON report: %v\n%s", err, r.stdout)
	}
	if len(rep.Rounds) != 2 || len(rep.Rows) != 12 || rep.Machine.LoadStart == "" || rep.Config.Flood != 100 {
		t.Fatalf("report: %d rounds, %d rows, machine %+v, config %+v; want 2 rounds, 12 rows, load, flood 100",
			len(rep.Rounds), len(rep.Rows), rep.Machine, rep.Config)
	}
	for _, row := range rep.Rows {
		if len(row.Relay.Rounds) != 2 {
			t.Errorf("%s: relay figures %v, want 2", row.Key, row.Relay.Rounds)
		}
		if row.Target != nil && row.Verdict != bench.Met && row.Verdict != bench.NotMet {
			t.Errorf("%s: verdict %q", row.Key, row.Verdict)
		}
		if row.Verdict == bench.NotMet && !strings.Contains(r.stderr, "target not met: "+row.Name+": want "+row.Want) {
			t.Errorf("%s missed, not named on stderr:\n%s", row.Key, r.stderr)
		}
	}
}
