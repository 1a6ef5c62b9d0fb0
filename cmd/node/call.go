package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sync"
	"time"

	"github.com/relay-dev/relay"
)

// clientFlags are the flags of the commands that send: call, cast, notify.
type clientFlags struct {
	matchmaker string
	timeout    time.Duration
	pubsub     bool
	curve      curveFlags
}

func (c *clientFlags) register(fs *flag.FlagSet, what string) {
	fs.StringVar(&c.matchmaker, "matchmaker", "", "matchmaker URL, e.g. redis://127.0.0.1:6379 (required)")
	fs.DurationVar(&c.timeout, "timeout", 5*time.Second, "deadline of the "+what)
	fs.BoolVar(&c.pubsub, "pubsub", false, "send fanouts and notifications through publisher proxies (node proxy --publisher)")
	c.curve.register(fs)
}

// check checks the flags every sending command needs and returns the
// matchmaker URL.
func (c *clientFlags) check() (string, error) {
	mm, err := matchmakerURL(c.matchmaker)
	if err != nil {
		return "", err
	}
	if c.timeout <= 0 {
		return "", fmt.Errorf("--timeout %v: want a positive duration, such as 5s", c.timeout)
	}
	if err := c.curve.check(); err != nil {
		return "", err
	}
	return mm, nil
}

func callCommand(name string) command {
	short := "call a method with a JSON argument and print the reply as JSON"
	about := `Calls METHOD with ARG on one server of the topic (round-robin) or on --server,
and prints the reply as one line of JSON; an error goes to stderr, exit code 1.
`
	if name == "cast" {
		short = "cast (one-way) to a method: one server, or --fanout to all"
		about = `Casts METHOD with ARG to one server of the topic (round-robin), to --server,
or with --fanout to every server of the topic, without waiting for a reply;
exit code 1 when the cast cannot be sent.
`
	}
	return command{
		name:     name,
		short:    short,
		synopsis: "--matchmaker URL --topic T [--server S ...] METHOD [ARG | @FILE | -]",
		about:    about + "\n" + fmt.Sprintf(argHelp, "ARG") + "\n" + matchmakerNote + "\n" + curveNote,
		examples: fmt.Sprintf(`  node %[1]s --matchmaker redis://127.0.0.1:6379 --topic compute add 5
  node %[1]s --matchmaker redis://127.0.0.1:6379 --topic compute append hello --server alpha
  node %[1]s --matchmaker redis://127.0.0.1:6379 --topic compute echo '{"a":[1,2]}'
  node %[1]s --matchmaker redis://127.0.0.1:6379 --topic compute echo @big.json
  node %[1]s --matchmaker redis://127.0.0.1:6379 --topic compute --timeout 500ms sleep 2000
  node %[1]s --config testdata/node.yaml add 5
`, name),
		setup: setupOf(func() commandFlags { return &callFlags{name: name} }),
	}
}

// callFlags are the flags of node call and node cast (name).
type callFlags struct {
	name                 string
	cf                   clientFlags
	tf                   targetFlags
	fanout, router, acks bool
}

func (f *callFlags) register(fs *flag.FlagSet) {
	f.cf.register(fs, f.name)
	f.tf.register(fs, true)
	fs.BoolVar(&f.router, "router-proxy", false, "send through router proxies (node proxy --router); the servers must run with --router-proxy too")
	fs.BoolVar(&f.acks, "acks", false, "ask the server to acknowledge, and resend until acknowledged or answered (servers always acknowledge what asks for it)")
	if f.name == "cast" {
		fs.BoolVar(&f.fanout, "fanout", false, "to every server of the topic")
	}
}

// run calls (printing the reply) or casts.
func (f *callFlags) run(c *cli) int {
	mm, arg, code, ok := c.sendArgs(&f.cf, f.tf.topic, "METHOD", "ARG")
	if !ok {
		return code
	}
	t := f.tf.target()
	t.Fanout = f.fanout
	return c.send(mm, f.cf.timeout, func(ctx context.Context, n *relay.Node) error {
		if f.name == "cast" {
			return n.Cast(ctx, t, c.args[0], arg)
		}
		var reply any
		if err := n.Call(ctx, t, c.args[0], arg, &reply); err != nil {
			return err
		}
		return writeJSON(c.stdout, reply)
	}, append(f.cf.curve.options(), relay.WithHost(f.name+"-client"), relay.WithPubSub(f.cf.pubsub), relay.WithRouterProxy(f.router), relay.WithAcks(f.acks))...)
}

// sendArgs checks the flags of a sending command (call, cast, notify),
// its --topic and its arguments, NAME [VALUE]. It returns the matchmaker
// URL and VALUE as argValue reads it (nil when absent); when not ok, code
// is the exit code of the usage error.
func (c *cli) sendArgs(cf *clientFlags, topic, name, value string) (mm string, arg any, code int, ok bool) {
	mm, err := cf.check()
	if err != nil {
		return "", nil, c.usageError("%v", err), false
	}
	if topic == "" {
		return "", nil, c.usageError("--topic is required"), false
	}
	if len(c.args) < 1 || len(c.args) > 2 {
		return "", nil, c.usageError("want %s [%s], got %q", name, value, c.args), false
	}
	if len(c.args) == 2 {
		if arg, err = argValue(value, c.args[1], c.stdin); err != nil {
			return "", nil, c.usageError("%v", err), false
		}
	}
	return mm, arg, 0, true
}

// send starts a client node on mm, runs f with a context bounded by
// timeout, closes the node and reports the outcome: exit code 0, or 1 with
// the error. A cast or notification that the node could not deliver is an
// error too; one whose connection dropped just after it was sent (the
// server or listener closed) may have arrived: a warning says so.
func (c *cli) send(mm string, timeout time.Duration, f func(context.Context, *relay.Node) error, opts ...relay.Option) int {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var (
		mu          sync.Mutex
		lost, maybe []error
	)
	undelivered := relay.WithUndelivered(func(u relay.Undelivered) {
		mu.Lock()
		defer mu.Unlock()
		if errors.Is(u.Err, relay.ErrConnectionLost) {
			maybe = append(maybe, u.Err)
		} else {
			lost = append(lost, u.Err)
		}
	})
	node, err := relay.Start(ctx, append([]relay.Option{relay.WithMatchmaker(mm), undelivered}, opts...)...)
	if err != nil {
		return c.fail(err)
	}
	err = f(ctx, node)
	if cerr := node.Close(); err == nil && cerr != nil {
		err = cerr
	}
	mu.Lock()
	defer mu.Unlock()
	switch {
	case err != nil:
	case len(lost) > 0:
		err = fmt.Errorf("the message was sent but not delivered (%d): %w", len(lost), lost[0])
	case len(maybe) > 0:
		fmt.Fprintf(c.stderr, "warning: %v: it may or may not have arrived\n", maybe[0])
	}
	if err != nil {
		return c.fail(err)
	}
	return 0
}
