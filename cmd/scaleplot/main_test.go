package main

import (
	"bytes"
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relay-dev/relay/internal/scale"
)

// The curve's JSON, as node scale prints it, becomes a PNG; input that is
// not such JSON is an error naming what to give instead.
func TestPlotFromJSON(t *testing.T) {
	var reps []*scale.Report
	for _, mode := range scale.Modes {
		for _, n := range []int{10, 100} {
			r := &scale.Report{Mode: mode, Nodes: n}
			r.ComputeCalls.P50 = time.Duration(n) * time.Millisecond
			r.ComputeCalls.P99 = time.Duration(3*n) * time.Millisecond
			r.Fanouts.LastP50 = time.Duration(n) * time.Millisecond
			r.Storm.Reachable = time.Duration(n) * 10 * time.Millisecond
			r.End = []scale.Usage{{Role: "compute", Nodes: n, RSS: int64(n) << 20}}
			reps = append(reps, r)
		}
	}
	js, err := json.Marshal(reps)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "scale.png")
	var stderr bytes.Buffer
	if rc := run([]string{"-o", out}, bytes.NewReader(js), &stderr); rc != 0 {
		t.Fatalf("rc %d: %s", rc, stderr.String())
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 200 || b.Dy() < 200 {
		t.Errorf("plot of %v, want a real chart", b)
	}

	stderr.Reset()
	if rc := run([]string{"-o", out}, strings.NewReader("not json"), &stderr); rc != 1 || !strings.Contains(stderr.String(), "node scale --curve") {
		t.Errorf("bad input: rc %d, %q", rc, stderr.String())
	}
	stderr.Reset()
	if rc := run(nil, bytes.NewReader(js), &stderr); rc != 2 || !strings.Contains(stderr.String(), "-o FILE") {
		t.Errorf("no -o: rc %d, %q", rc, stderr.String())
	}
}
