package main

import (
	"flag"
	"time"

	"github.com/relay-dev/relay"
	"github.com/relay-dev/relay/dashboard"
	"github.com/relay-dev/relay/matchmaker"
)

func dashboardCommand() command {
	return command{
		name:     "dashboard",
		short:    "serve a live web page of the cluster (topics, servers, pools, proxies, rates)",
		synopsis: "--matchmaker URL --http HOST:PORT",
		about: `Serves one web page at http://HOST:PORT/ that shows the cluster as it is now,
updated every second: topics and their servers, each server node (state,
release, uptime, calls/s, errors/s, mean latency, handlers, pending calls,
restarts, drops), listener pools, router and publisher proxies. It reads
the matchmaker's registrations and asks each server node for its
$relay.info; rates need nodes that count their calls (node serve does).
/api/cluster gives the same as JSON. Runs until SIGINT or SIGTERM.

` + matchmakerNote,
		examples: `  node dashboard --matchmaker redis://127.0.0.1:6379 --http 127.0.0.1:8080
`,
		setup: func(fs *flag.FlagSet) func(*cli) int {
			var cf clusterFlags
			cf.register(fs, time.Second, "how long each node may take to answer")
			httpAddr := httpFlag(fs, "the page")
			return func(c *cli) int {
				url, code, ok := cf.check(c)
				if !ok {
					return code
				}
				if *httpAddr == "" {
					return c.usageError("--http is required: the HOST:PORT to serve the page on, such as 127.0.0.1:8080")
				}
				m, lister, err := openLister(url)
				if err != nil {
					return c.fail(err)
				}
				defer m.Close()
				ctx, stop := signalContext()
				defer stop()
				node, err := relay.Start(ctx, append(cf.curve.options(), relay.WithMatchmaker(url), relay.WithHost("dashboard"),
					relay.WithRouterProxy(cf.router), relay.WithLogger(c.logger()))...)
				if err != nil {
					return c.fail(err)
				}
				defer node.Close()
				bound, stopHTTP, err := c.serveHTTP(*httpAddr, dashboard.New(dashboard.Config{Node: node, Lister: lister, Timeout: cf.timeout}))
				if err != nil {
					return c.usageError("%v", err)
				}
				defer stopHTTP()
				c.log.Info("dashboard running", "url", "http://"+bound+"/", "matchmaker", matchmaker.Redact(url))
				<-ctx.Done()
				c.log.Info("signal received; closing")
				return 0
			}
		},
	}
}
