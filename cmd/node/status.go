package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/relay-dev/relay/cluster"
	"github.com/relay-dev/relay/matchmaker"
)

func statusCommand() command {
	return command{
		name:     "status",
		short:    "list a matchmaker's registrations with their remaining TTL",
		synopsis: "--matchmaker URL",
		about: "Lists every registered target and host with its remaining TTL and, in the NODE\n" +
			"column, what the node at that address says of itself (node info has all of it).\n\n" + matchmakerNote,
		examples: `  node status --matchmaker redis://127.0.0.1:6379
  node status --matchmaker file:///etc/relay/hosts.json
  node status --config testdata/node.yaml
`,
		setup: func(fs *flag.FlagSet) func(*cli) int {
			var cf clusterFlags
			cf.register(fs, 5*time.Second, "give up on the matchmaker after this long")
			info := fs.Bool("info", true, "ask each server node for its info ($relay.info) and show it in the NODE column")
			return func(c *cli) int {
				url, code, ok := cf.check(c)
				if !ok {
					return code
				}
				if *info {
					return c.collect(url, cf, func(v *cluster.View, regs []matchmaker.Registration) {
						writeStatus(c.stdout, regs, v, time.Now())
					})
				}
				m, lister, err := openLister(url)
				if err != nil {
					return c.fail(err)
				}
				defer m.Close()
				ctx, cancel := context.WithTimeout(context.Background(), cf.timeout)
				defer cancel()
				regs, err := lister.List(ctx)
				if err != nil {
					return c.fail(err)
				}
				writeStatus(c.stdout, regs, nil, time.Now())
				return 0
			}
		},
	}
}

// writeStatus prints registrations as an aligned table; with a view, the
// NODE column says what the node at each address says of itself.
func writeStatus(w io.Writer, regs []matchmaker.Registration, v *cluster.View, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	header := "EXCHANGE\tTOPIC\tSERVER\tADDRESS\tTTL"
	if v != nil {
		header += "\tNODE"
	}
	fmt.Fprintln(tw, header)
	for _, r := range regs {
		ttl := "static"
		if !r.Expires.IsZero() {
			ttl = r.Expires.Sub(now).Round(100 * time.Millisecond).String()
		}
		server := r.Key.Server
		if server == "" {
			server = "(any)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s", r.Key.Exchange, r.Key.Topic, server, r.Addr, ttl)
		if v != nil {
			fmt.Fprintf(tw, "\t%s", nodeSummary(v.NodeAt(r.Addr)))
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	fmt.Fprintf(w, "%d registrations\n", len(regs))
}

// nodeSummary is a node's NODE column: host, release, uptime and what it
// served, or why it did not answer.
func nodeSummary(n *cluster.Node) string {
	switch {
	case n == nil:
		return "-"
	case n.Info == nil:
		return "unreachable"
	}
	in := n.Info
	up := (time.Duration(in.Uptime) * time.Second).Round(time.Second)
	return fmt.Sprintf("%s relay %s pid %d up %v, %d handlers running, %d restarts", in.Host, in.Version, in.PID, up,
		in.Stats.Handlers, restarts(in.Stats.Restarts))
}

func restarts(m map[string]int) int {
	n := 0
	for _, r := range m {
		n += r
	}
	return n
}
