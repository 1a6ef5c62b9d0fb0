package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/relay-dev/relay"
	"github.com/relay-dev/relay/internal/demo"
)

// matchmakerNote goes into the help of serve, call and cast.
const matchmakerNote = `Matchmakers: memory://NAME lives inside one process (a serve in one process
and a call in another do not find each other: "no servers for target").
Across processes use Redis, redis://[:password@]host:port[/db] or
redis+sentinel://h1:26379,h2:26379/mastername, or a static hosts file,
file:///path/hosts.json (format: testdata/hosts.json; topic ->
["host:port", ...], reloaded when edited; serve on the port its entry names,
e.g. --ports 7001-7001). Any other scheme fails with the matchmaker's error.
`

// targetFlags are the flags that name a target.
type targetFlags struct {
	exchange, topic, server, namespace, version string
}

func (t *targetFlags) register(fs *flag.FlagSet, withServer bool) {
	fs.StringVar(&t.topic, "topic", "", "topic to serve or address (required)")
	fs.StringVar(&t.exchange, "exchange", "", "exchange of the topic (optional)")
	fs.StringVar(&t.namespace, "namespace", "", "namespace of the methods (optional)")
	fs.StringVar(&t.version, "version", "", `version "MAJOR.MINOR" (optional)`)
	if withServer {
		fs.StringVar(&t.server, "server", "", "send to this server (host name) only; empty: any server, round-robin")
	}
}

func (t *targetFlags) target() relay.Target {
	return relay.Target{Exchange: t.exchange, Topic: t.topic, Server: t.server, Namespace: t.namespace, Version: t.version}
}

func runServe(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("serve", "--matchmaker URL --topic T [--host NAME --bind ADDR ...]",
		`Starts a node that serves the demo endpoint (methods add, subtract, append,
sleep, get) on the topic, logs what it serves and its endpoint to stderr, and
runs until SIGINT or SIGTERM, then closes the node.

`+matchmakerNote,
		`  node serve --matchmaker memory://default --host alpha --topic compute
  node serve --matchmaker memory://default --host alpha --bind 10.0.0.5 --topic compute \
      --namespace calc --version 1.2 --ports 21000-21099 --ttl 10s
`, stderr)
	var (
		tf    targetFlags
		mm    = fs.String("matchmaker", "", `matchmaker URL, e.g. memory://default (required)`)
		host  = fs.String("host", "", "host name to advertise (default: this machine's hostname)")
		bind  = fs.String("bind", "127.0.0.1", "address to bind and advertise")
		ports = fs.String("ports", "20000-29999", "port range MIN-MAX to bind in")
		ttl   = fs.Duration("ttl", 30*time.Second, "registration TTL: a server that stops renewing (every TTL/3) is forgotten after it")
		ps    = fs.Bool("pubsub", false, "receive fanouts through publisher proxies (node proxy --publisher)")
		rp    = fs.Bool("router-proxy", false, "take calls and casts through router proxies (node proxy --router)")
		acks  = fs.Bool("acks", false, "acknowledge calls and casts that ask for it and handle each msg_id once")
	)
	tf.register(fs, false)
	if code, ok := parse(fs, args, stdout); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(fs, "unexpected arguments %q", fs.Args())
	}
	if *mm == "" || tf.topic == "" {
		return usageError(fs, "--matchmaker and --topic are required")
	}
	portMin, portMax, err := parsePorts(*ports)
	if err != nil {
		return usageError(fs, "--ports: %v", err)
	}

	log := slog.New(slog.NewTextHandler(stderr, nil))
	opts := []relay.Option{
		relay.WithMatchmaker(*mm), relay.WithBindAddress(*bind),
		relay.WithPortRange(portMin, portMax), relay.WithRegistrationTTL(*ttl), relay.WithLogger(log),
		relay.WithPubSub(*ps), relay.WithRouterProxy(*rp), relay.WithAcks(*acks),
	}
	if *host != "" {
		opts = append(opts, relay.WithHost(*host))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	node, err := relay.Start(ctx, opts...)
	if err != nil {
		fmt.Fprintf(stderr, "node serve: %v\n", err)
		return 1
	}
	srv, err := node.Serve(tf.target())
	if err != nil {
		fmt.Fprintf(stderr, "node serve: %v\n", err)
		node.Close()
		return 1
	}
	(&demo.Endpoint{Host: node.Host()}).Register(srv)
	log.Info("serving demo endpoint", "target", srv.Target().String(), "endpoint", node.Endpoint(),
		"methods", "add,subtract,append,sleep,get", "matchmaker", *mm)
	<-ctx.Done()
	log.Info("signal received; closing")
	if err := node.Close(); err != nil {
		fmt.Fprintf(stderr, "node serve: close: %v\n", err)
		return 1
	}
	return 0
}

// parsePorts parses "MIN-MAX".
func parsePorts(s string) (int, int, error) {
	lo, hi, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, fmt.Errorf("want MIN-MAX, got %q", s)
	}
	min, err1 := strconv.Atoi(lo)
	max, err2 := strconv.Atoi(hi)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("want MIN-MAX with integer ports, got %q", s)
	}
	return min, max, nil
}
