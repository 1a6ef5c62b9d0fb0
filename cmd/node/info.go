package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"slices"
	"time"

	"github.com/relay-dev/relay"
	"github.com/relay-dev/relay/cluster"
	"github.com/relay-dev/relay/matchmaker"
)

func infoCommand() command {
	return command{
		name:     "info",
		short:    "print what each server node says of itself ($relay.info) as JSON",
		synopsis: "--matchmaker URL [--server NAME]",
		about: `Finds the server nodes registered in the matchmaker and asks each (or only
--server NAME) for its node info: host, endpoint, relay and protocol
version, uptime, the targets and methods it serves, its listener pools,
its counters, and, for a node that serves metrics, its calls, errors and
latencies by method. Prints one JSON object per node.

` + matchmakerNote,
		examples: `  node info --matchmaker redis://127.0.0.1:6379
  node info --matchmaker redis://127.0.0.1:6379 --server alpha
`,
		setup: func(fs *flag.FlagSet) func(*cli) int {
			var cf clusterFlags
			cf.register(fs, 5*time.Second, "give up after this long")
			server := fs.String("server", "", "only the node of this server name (its --host)")
			return func(c *cli) int {
				url, code, ok := cf.check(c)
				if !ok {
					return code
				}
				var view *cluster.View
				if code := c.collect(url, cf, func(v *cluster.View, _ []matchmaker.Registration) { view = v }); code != 0 {
					return code
				}
				var names []string
				found := 0
				for _, n := range view.Nodes {
					names = append(names, n.Name)
					if *server != "" && n.Name != *server {
						continue
					}
					found++
					if n.Info == nil {
						fmt.Fprintf(c.stderr, "node info: %s at %s: %s\n", n.Name, n.Addr, n.Err)
						continue
					}
					b, _ := json.MarshalIndent(n.Info, "", "  ")
					fmt.Fprintf(c.stdout, "%s\n", b)
				}
				if found == 0 {
					slices.Sort(names)
					return c.fail(fmt.Errorf("--server %q: no such server registered in %s (registered: %v)", *server, matchmaker.Redact(url), slices.Compact(names)))
				}
				return 0
			}
		},
	}
}

// clusterFlags are the flags of the commands that read a cluster: status,
// info and dashboard.
type clusterFlags struct {
	matchmaker string
	timeout    time.Duration
	router     bool
	curve      curveFlags
}

func (f *clusterFlags) register(fs *flag.FlagSet, timeout time.Duration, what string) {
	fs.StringVar(&f.matchmaker, "matchmaker", "", "matchmaker URL (required)")
	fs.DurationVar(&f.timeout, "timeout", timeout, what)
	fs.BoolVar(&f.router, "router-proxy", false, "reach the nodes through router proxies (when they run with --router-proxy)")
	f.curve.register(fs)
}

// check checks the flags (and that no argument was given) and returns the
// matchmaker URL, or the exit code of a usage error and ok=false.
func (f *clusterFlags) check(c *cli) (url string, code int, ok bool) {
	if code, ok := c.noArgs(); !ok {
		return "", code, false
	}
	url, err := matchmakerURL(f.matchmaker)
	if err != nil {
		return "", c.usageError("%v", err), false
	}
	if f.timeout <= 0 {
		return "", c.usageError("--timeout %v: want a positive duration, such as 5s", f.timeout), false
	}
	if err := f.curve.check(); err != nil {
		return "", c.usageError("%v", err), false
	}
	return url, 0, true
}

// openLister opens the matchmaker url, which must list its registrations.
func openLister(url string) (matchmaker.Matchmaker, matchmaker.Lister, error) {
	m, err := matchmaker.Open(url)
	if err != nil {
		return nil, nil, fmt.Errorf("--matchmaker: %w", err)
	}
	lister, ok := m.(matchmaker.Lister)
	if !ok {
		m.Close()
		return nil, nil, fmt.Errorf("matchmaker %s cannot list its registrations", matchmaker.Redact(url))
	}
	return m, lister, nil
}

// collect lists the registrations of the matchmaker url, starts a client
// node to ask the server nodes for their info, and passes the cluster's
// View and the registrations to f. It returns the exit code.
func (c *cli) collect(url string, cf clusterFlags, f func(*cluster.View, []matchmaker.Registration)) int {
	ctx, cancel := context.WithTimeout(context.Background(), cf.timeout)
	defer cancel()
	m, lister, err := openLister(url)
	if err != nil {
		return c.fail(err)
	}
	defer m.Close()
	regs, err := lister.List(ctx)
	if err != nil {
		return c.fail(err)
	}
	node, err := relay.Start(ctx, append(cf.curve.options(), relay.WithMatchmaker(url), relay.WithHost(c.name+"-client"),
		relay.WithRouterProxy(cf.router), relay.WithLogger(c.logger()))...)
	if err != nil {
		return c.fail(err)
	}
	defer node.Close()
	f(cluster.Collect(ctx, node, regs, cf.timeout/2), regs)
	return 0
}
