package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/relay-dev/relay"
)

// clientFlags are the flags of call and cast.
type clientFlags struct {
	targetFlags
	matchmaker string
	timeout    time.Duration
	pubsub     bool
	fanout     bool
	router     bool
	acks       bool
}

func (c *clientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.matchmaker, "matchmaker", "", "matchmaker URL, e.g. memory://default (required)")
	fs.DurationVar(&c.timeout, "timeout", 5*time.Second, "deadline of the call or cast")
	fs.BoolVar(&c.pubsub, "pubsub", false, "send fanouts through publisher proxies (node proxy --publisher)")
	fs.BoolVar(&c.fanout, "fanout", false, "cast only: to every server of the topic")
	fs.BoolVar(&c.router, "router-proxy", false, "send through router proxies (node proxy --router)")
	fs.BoolVar(&c.acks, "acks", false, "ask for acknowledgements and resend until acknowledged or answered")
	c.targetFlags.register(fs, true)
}

func runCall(args []string, stdout, stderr io.Writer) int {
	return runClient("call", args, stdout, stderr)
}

func runCast(args []string, stdout, stderr io.Writer) int {
	return runClient("cast", args, stdout, stderr)
}

// runClient runs call or cast.
func runClient(name string, args []string, stdout, stderr io.Writer) int {
	what := `Calls METHOD with ARG on one server of the topic (round-robin) or on --server,
and prints the reply; an error is printed to stderr with exit code 1.`
	if name == "cast" {
		what = `Casts METHOD with ARG to one server of the topic (round-robin) or to --server,
without waiting for a reply; exit code 1 when the cast cannot be sent.`
	}
	fs := newFlagSet(name, "--matchmaker URL --topic T [--server S ...] METHOD [ARG]",
		what+`
ARG is sent as an integer if it parses as one, else as a string; without ARG,
nil is sent.

`+matchmakerNote,
		fmt.Sprintf(`  node %[1]s --matchmaker memory://default --topic compute add 5
  node %[1]s --matchmaker memory://default --topic compute --server alpha append hello
  node %[1]s --matchmaker memory://default --topic compute --timeout 500ms sleep 2000
`, name), stderr)
	var cf clientFlags
	cf.register(fs)
	if code, ok := parse(fs, args, stdout); !ok {
		return code
	}
	if cf.matchmaker == "" || cf.topic == "" {
		return usageError(fs, "--matchmaker and --topic are required")
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		return usageError(fs, "want METHOD [ARG], got %q", fs.Args())
	}
	method := fs.Arg(0)
	var arg any
	if fs.NArg() == 2 {
		arg = parseArg(fs.Arg(1))
	}

	ctx, cancel := context.WithTimeout(context.Background(), cf.timeout)
	defer cancel()
	node, err := relay.Start(ctx, relay.WithMatchmaker(cf.matchmaker), relay.WithHost(name+"-client"),
		relay.WithPubSub(cf.pubsub), relay.WithRouterProxy(cf.router), relay.WithAcks(cf.acks))
	if err != nil {
		fmt.Fprintf(stderr, "node %s: %v\n", name, err)
		return 1
	}
	t := cf.target()
	t.Fanout = cf.fanout
	if cf.fanout && name != "cast" {
		return usageError(fs, "--fanout is for cast only")
	}
	if name == "cast" {
		err = node.Cast(ctx, t, method, arg)
	} else {
		var reply any
		if err = node.Call(ctx, t, method, arg, &reply); err == nil {
			fmt.Fprintf(stdout, "%v\n", reply)
		}
	}
	if cerr := node.Close(); err == nil && cerr != nil {
		err = cerr
	}
	// Close does not wait for queued casts to go out; it counts those it
	// drops, so say so rather than report success.
	if d := node.Stats().DroppedCasts; err == nil && d > 0 {
		err = fmt.Errorf("the cast was queued but dropped when the node closed (%d dropped)", d)
	}
	if err != nil {
		fmt.Fprintf(stderr, "node %s: %v\n", name, err)
		return 1
	}
	return 0
}

// parseArg returns s as an int64 if it parses as one, else s.
func parseArg(s string) any {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n
	}
	return s
}
