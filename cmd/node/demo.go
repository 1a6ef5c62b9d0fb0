package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/relay-dev/relay/internal/demo"
)

func runDemo(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("demo", "",
		`Starts, inside this process, three server nodes (alpha, beta, gamma) serving
the demo endpoint on topic "compute" and a client node, all on a fresh
in-memory matchmaker and talking over tcp on 127.0.0.1. It then shows, step by
step: round-robin calls, directed calls, casts, a timeout, a remote error and
an unknown method, and closes everything. No setup needed.
`,
		`  node demo
  make demo
`, stderr)
	if code, ok := parse(fs, args, stdout); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(fs, "unexpected arguments %q", fs.Args())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := demo.RunDemo(ctx, stdout); err != nil {
		fmt.Fprintf(stderr, "node demo: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, "\nDemo finished.")
	return 0
}
