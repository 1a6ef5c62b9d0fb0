package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/relay-dev/relay/matchmaker"
)

// runStatus lists the registrations of a matchmaker as a table.
func runStatus(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("status", "--matchmaker URL",
		"Lists every registered target and host with its remaining TTL.\n\n"+matchmakerNote,
		`  node status --matchmaker redis://127.0.0.1:6379
  node status --matchmaker file:///etc/relay/hosts.json
`, stderr)
	mm := fs.String("matchmaker", "", "matchmaker URL (required)")
	timeout := fs.Duration("timeout", 5*time.Second, "give up on the matchmaker after this long")
	if code, ok := parse(fs, args, stdout); !ok {
		return code
	}
	if *mm == "" {
		return usageError(fs, "--matchmaker is required")
	}
	if fs.NArg() > 0 {
		return usageError(fs, "unexpected arguments %q", fs.Args())
	}
	m, err := matchmaker.Open(*mm)
	if err != nil {
		fmt.Fprintf(stderr, "node status: %v\n", err)
		return 1
	}
	defer m.Close()
	lister, ok := m.(matchmaker.Lister)
	if !ok {
		fmt.Fprintf(stderr, "node status: matchmaker %s cannot list its registrations\n", *mm)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	regs, err := lister.List(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "node status: %v\n", err)
		return 1
	}
	writeStatus(stdout, regs, time.Now())
	return 0
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
