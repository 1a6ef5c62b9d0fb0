package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/relay-dev/relay"
	"github.com/relay-dev/relay/matchmaker"
)

func notifyCommand() command {
	return command{
		name:     "notify",
		short:    "publish a notification (JSON payload) to every listener pool of a topic",
		synopsis: "--matchmaker URL --topic T [--priority P] EVENT [PAYLOAD | @FILE | -]",
		about: `Publishes notification EVENT with PAYLOAD on the topic at --priority: one
listener of each listener pool (node listen --pool) receives it, and each
listener without a pool gets its own copy. Exit code 1 when nothing listens
(no servers for target) or it cannot be sent.

` + fmt.Sprintf(argHelp, "PAYLOAD") + "\n" + matchmakerNote + "\n" + curveNote,
		examples: `  node notify --matchmaker redis://127.0.0.1:6379 --topic billing invoice.paid '{"id":7}'
  node notify --matchmaker redis://127.0.0.1:6379 --topic billing --priority error disk.full @event.json
`,
		setup: setupOf(func() commandFlags { return &notifyFlags{} }),
	}
}

// notifyFlags are node notify's flags.
type notifyFlags struct {
	cf                         clientFlags
	topic, priority, publisher string
}

func (f *notifyFlags) register(fs *flag.FlagSet) {
	f.cf.register(fs, "notification")
	fs.StringVar(&f.topic, "topic", "", "topic of the notification (required)")
	fs.StringVar(&f.priority, "priority", "info", "one of "+strings.Join(relay.Priorities, ", "))
	fs.StringVar(&f.publisher, "publisher", "", "publisher id in the notification (default: this machine's hostname)")
}

// run publishes the notification.
func (f *notifyFlags) run(c *cli) int {
	mm, payload, code, ok := c.sendArgs(&f.cf, f.topic, "EVENT", "PAYLOAD")
	if !ok {
		return code
	}
	note := relay.Notification{Topic: f.topic, Priority: f.priority, EventType: c.args[0], PublisherID: f.publisher, Payload: payload}
	return c.send(mm, f.cf.timeout, func(ctx context.Context, n *relay.Node) error {
		return n.Notify(ctx, note)
	}, append(f.cf.curve.options(), relay.WithPubSub(f.cf.pubsub))...)
}

// delivery is how node listen prints a notification.
type delivery struct {
	ID          string `json:"id"`
	Topic       string `json:"topic"`
	Priority    string `json:"priority"`
	EventType   string `json:"event_type"`
	PublisherID string `json:"publisher_id"`
	Timestamp   string `json:"timestamp"`
	Payload     any    `json:"payload"`
}

// listenAbout is the start of node listen's help.
const listenAbout = `Starts a node that listens for the notifications of each --topic (T: every
priority; T.p: priority p only) and prints each one to stdout as one line of
JSON: id, topic, priority, event_type, publisher_id, timestamp, payload.
Listeners that share --pool compete (each notification goes to one of them);
without --pool the listener gets every notification. Logs to stderr; runs
until SIGINT or SIGTERM, or until --count notifications were printed.

`

func listenCommand() command {
	return command{
		name:     "listen",
		short:    "print the notifications of topics as JSON lines, in a listener pool",
		synopsis: "--matchmaker URL --topic T [--topic T2 ...] [--pool P] [--count N]",
		about:    listenAbout + matchmakerNote + "\n" + curveNote,
		examples: `  node listen --matchmaker redis://127.0.0.1:6379 --topic billing
  node listen --matchmaker redis://127.0.0.1:6379 --topic billing.error --topic audit --pool workers
  node listen --matchmaker redis://127.0.0.1:6379 --topic billing --count 1 | jq .payload
`,
		setup: setupOf(func() commandFlags { return &listenFlags{} }),
	}
}

// listenFlags are node listen's flags.
type listenFlags struct {
	nf     nodeFlags
	topics listFlag
	pool   string
	count  int
}

func (f *listenFlags) register(fs *flag.FlagSet) {
	f.nf.register(fs)
	fs.Var(&f.topics, "topic", "topic to listen to, T or T.priority; repeat it or separate with commas (required)")
	fs.StringVar(&f.pool, "pool", "", "listener pool: listeners of one pool share the notifications (default: a pool of its own)")
	fs.IntVar(&f.count, "count", 0, "exit after printing this many notifications (0: until interrupted)")
}

// run starts the node and prints what its listener gets until a signal,
// --count notifications or a failure to print.
func (f *listenFlags) run(c *cli) int {
	opts, code, ok := c.nodeOptions(&f.nf)
	if !ok {
		return code
	}
	if len(f.topics) == 0 {
		return c.usageError("--topic is required")
	}
	if f.count < 0 {
		return c.usageError("--count %d: want 0 or more", f.count)
	}
	ctx, stop, node, log, err := c.startNode(opts...)
	if err != nil {
		return c.fail(err)
	}
	defer stop()
	defer f.nf.curve.reloadOnHUP(log, node.ReloadAllowList)()
	p := newPrinter(c.stdout, f.count)
	l, err := node.Listen(f.topics, f.pool, p.print)
	if err != nil {
		node.Close()
		return c.fail(err)
	}
	log.Info("listening", "topics", strings.Join(f.topics, ","), "pool", f.pool, "endpoint", node.Endpoint(), "matchmaker", matchmaker.Redact(f.nf.matchmaker))
	code = 0
	select {
	case <-ctx.Done():
		log.Info("signal received; closing")
	case <-p.enough:
	case err := <-p.failed:
		code = c.fail(err)
	}
	l.Stop()
	if err := node.Close(); err != nil && code == 0 {
		return c.fail(fmt.Errorf("close: %w", err))
	}
	return code
}

// printer prints each notification a listener gets as a line of JSON, up
// to count of them (0: no bound).
type printer struct {
	w     io.Writer
	count int
	// enough closes once count were printed; failed gets the first error
	// of printing.
	enough chan struct{}
	failed chan error

	mu      sync.Mutex // serialises printing and guards printed
	printed int
}

func newPrinter(w io.Writer, count int) *printer {
	return &printer{w: w, count: count, enough: make(chan struct{}), failed: make(chan error, 1)}
}

// print is the listener's handler.
func (p *printer) print(_ context.Context, d *relay.Delivery) error {
	var payload any
	if err := d.Decode(&payload); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.count > 0 && p.printed >= p.count {
		return nil // the listener is stopping
	}
	err := writeJSON(p.w, delivery{ID: d.ID, Topic: d.Topic, Priority: d.Priority, EventType: d.EventType,
		PublisherID: d.PublisherID, Timestamp: d.Timestamp.UTC().Format(time.RFC3339Nano), Payload: payload})
	if err != nil {
		select {
		case p.failed <- err:
		default:
		}
		return err
	}
	if p.printed++; p.printed == p.count {
		close(p.enough)
	}
	return nil
}
