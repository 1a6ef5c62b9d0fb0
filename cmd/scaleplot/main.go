// Command scaleplot draws the cost curves of `node scale --curve ... --json`
// into a PNG: connections, memory, call latency, fanout and the
// registration storm against N, one line per mode.
//
//	node scale --curve 10,100,1000 --mode direct,proxied --json > scale.json
//	go run ./cmd/scaleplot -o docs/scale.png scale.json
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/relay-dev/relay/internal/scale"
	"github.com/relay-dev/relay/internal/scaleplot"
)

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stderr)) }

func run(args []string, stdin io.Reader, stderr io.Writer) int {
	fs := flag.NewFlagSet("scaleplot", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "the PNG file to write (required)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: scaleplot -o FILE.png [CURVE.json]\n\nDraws the runs of `node scale --curve ... --json` (read from CURVE.json, or stdin).")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *out == "" || fs.NArg() > 1 {
		fmt.Fprintln(stderr, "scaleplot: give the PNG to write with -o FILE, and at most one JSON file of runs (node scale --curve ... --json)")
		return 2
	}
	in, name := stdin, "stdin"
	if fs.NArg() == 1 {
		f, err := os.Open(fs.Arg(0))
		if err != nil {
			fmt.Fprintf(stderr, "scaleplot: %v\n", err)
			return 1
		}
		defer f.Close()
		in, name = f, fs.Arg(0)
	}
	var reps []*scale.Report
	if err := json.NewDecoder(in).Decode(&reps); err != nil {
		fmt.Fprintf(stderr, "scaleplot: %s: want the JSON array that node scale --curve ... --json prints: %v\n", name, err)
		return 1
	}
	if err := scaleplot.Plot(reps, *out); err != nil {
		fmt.Fprintf(stderr, "scaleplot: %v\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "plot of %d runs written to %s\n", len(reps), *out)
	return 0
}
