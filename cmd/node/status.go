package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/relay-dev/relay/matchmaker"
)

func statusCommand() command {
	return command{
		name:     "status",
		short:    "list a matchmaker's registrations with their remaining TTL",
		synopsis: "--matchmaker URL",
		about:    "Lists every registered target and host with its remaining TTL.\n\n" + matchmakerNote,
		examples: `  node status --matchmaker redis://127.0.0.1:6379
  node status --matchmaker file:///etc/relay/hosts.json
  node status --config testdata/node.yaml
`,
		setup: func(fs *flag.FlagSet) func(*cli) int {
			mm := fs.String("matchmaker", "", "matchmaker URL (required)")
			timeout := fs.Duration("timeout", 5*time.Second, "give up on the matchmaker after this long")
			return func(c *cli) int {
				if code, ok := c.noArgs(); !ok {
					return code
				}
				url, err := matchmakerURL(*mm)
				if err != nil {
					return c.usageError("%v", err)
				}
				if *timeout <= 0 {
					return c.usageError("--timeout %v: want a positive duration, such as 5s", *timeout)
				}
				m, err := matchmaker.Open(url)
				if err != nil {
					return c.fail(fmt.Errorf("--matchmaker: %w", err))
				}
				defer m.Close()
				lister, ok := m.(matchmaker.Lister)
				if !ok {
					return c.fail(fmt.Errorf("matchmaker %s cannot list its registrations", url))
				}
				ctx, cancel := context.WithTimeout(context.Background(), *timeout)
				defer cancel()
				regs, err := lister.List(ctx)
				if err != nil {
					return c.fail(err)
				}
				writeStatus(c.stdout, regs, time.Now())
				return 0
			}
		},
	}
}

// writeStatus prints registrations as an aligned table.
func writeStatus(w io.Writer, regs []matchmaker.Registration, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "EXCHANGE\tTOPIC\tSERVER\tADDRESS\tTTL")
	for _, r := range regs {
		ttl := "static"
		if !r.Expires.IsZero() {
			ttl = r.Expires.Sub(now).Round(100 * time.Millisecond).String()
		}
		server := r.Key.Server
		if server == "" {
			server = "(any)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Key.Exchange, r.Key.Topic, server, r.Addr, ttl)
	}
	tw.Flush()
	fmt.Fprintf(w, "%d registrations\n", len(regs))
}
