package main

import (
	"flag"
	"fmt"

	"github.com/relay-dev/relay/internal/demo"
)

func demoCommand() command {
	return command{
		name:  "demo",
		short: "run a 3-server cluster in this process and explain each step",
		about: `Starts, inside this process, three server nodes (alpha, beta, gamma) serving
the demo endpoint on topic "compute" and a client node, all on a fresh
in-memory matchmaker and talking over tcp on 127.0.0.1. It then shows, step by
step: round-robin calls, directed calls, casts, a timeout, a remote error and
an unknown method, and closes everything. No setup needed.
`,
		examples: `  node demo
  make demo
`,
		setup: func(*flag.FlagSet) func(*cli) int {
			return func(c *cli) int {
				if code, ok := c.noArgs(); !ok {
					return code
				}
				ctx, stop := signalContext()
				defer stop()
				if err := demo.RunDemo(ctx, c.stdout); err != nil {
					return c.fail(err)
				}
				fmt.Fprintln(c.stdout, "\nDemo finished.")
				return 0
			}
		},
	}
}
