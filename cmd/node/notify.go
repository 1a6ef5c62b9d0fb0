package main

import (
	"context"
	"flag"
	"fmt"
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
		setup: func(fs *flag.FlagSet) func(*cli) int {
			var (
				cf        clientFlags
				topic     string
				priority  string
				publisher string
			)
			cf.register(fs, "notification")
			fs.StringVar(&topic, "topic", "", "topic of the notification (required)")
			fs.StringVar(&priority, "priority", "info", "one of "+strings.Join(relay.Priorities, ", "))
			fs.StringVar(&publisher, "publisher", "", "publisher id in the notification (default: this machine's hostname)")
			return func(c *cli) int {
				mm, err := cf.check()
				if err != nil {
					return c.usageError("%v", err)
				}
				if topic == "" {
					return c.usageError("--topic is required")
				}
				if len(c.args) < 1 || len(c.args) > 2 {
					return c.usageError("want EVENT [PAYLOAD], got %q", c.args)
				}
				var payload any
				if len(c.args) == 2 {
					if payload, err = argValue("PAYLOAD", c.args[1], c.stdin); err != nil {
						return c.usageError("%v", err)
					}
				}
				note := relay.Notification{Topic: topic, Priority: priority, EventType: c.args[0], PublisherID: publisher, Payload: payload}
				return c.send(mm, cf.timeout, func(ctx context.Context, n *relay.Node) error {
					return n.Notify(ctx, note)
				}, append(cf.curve.options(), relay.WithPubSub(cf.pubsub))...)
			}
		},
	}
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

func listenCommand() command {
	return command{
		name:     "listen",
		short:    "print the notifications of topics as JSON lines, in a listener pool",
		synopsis: "--matchmaker URL --topic T [--topic T2 ...] [--pool P] [--count N]",
		about: `Starts a node that listens for the notifications of each --topic (T: every
priority; T.p: priority p only) and prints each one to stdout as one line of
JSON: id, topic, priority, event_type, publisher_id, timestamp, payload.
Listeners that share --pool compete (each notification goes to one of them);
without --pool the listener gets every notification. Logs to stderr; runs
until SIGINT or SIGTERM, or until --count notifications were printed.

` + matchmakerNote + "\n" + curveNote,
		examples: `  node listen --matchmaker redis://127.0.0.1:6379 --topic billing
  node listen --matchmaker redis://127.0.0.1:6379 --topic billing.error --topic audit --pool workers
  node listen --matchmaker redis://127.0.0.1:6379 --topic billing --count 1 | jq .payload
`,
		setup: func(fs *flag.FlagSet) func(*cli) int {
			var (
				nf     nodeFlags
				topics listFlag
				pool   string
				count  int
			)
			nf.register(fs)
			fs.Var(&topics, "topic", "topic to listen to, T or T.priority; repeat it or separate with commas (required)")
			fs.StringVar(&pool, "pool", "", "listener pool: listeners of one pool share the notifications (default: a pool of its own)")
			fs.IntVar(&count, "count", 0, "exit after printing this many notifications (0: until interrupted)")
			return func(c *cli) int {
				if code, ok := c.noArgs(); !ok {
					return code
				}
				opts, err := nf.options()
				if err != nil {
					return c.usageError("%v", err)
				}
				if len(topics) == 0 {
					return c.usageError("--topic is required")
				}
				if count < 0 {
					return c.usageError("--count %d: want 0 or more", count)
				}
				ctx, stop, node, log, err := c.startNode(opts...)
				if err != nil {
					return c.fail(err)
				}
				defer stop()
				defer nf.curve.reloadOnHUP(log, node.ReloadAllowList)()
				var (
					mu      sync.Mutex // serialises printing and guards printed
					printed int
					enough  = make(chan struct{})
					failed  = make(chan error, 1)
				)
				l, err := node.Listen(topics, pool, func(_ context.Context, d *relay.Delivery) error {
					var payload any
					if err := d.Decode(&payload); err != nil {
						return err
					}
					mu.Lock()
					defer mu.Unlock()
					if count > 0 && printed >= count {
						return nil // the listener is stopping
					}
					err := writeJSON(c.stdout, delivery{ID: d.ID, Topic: d.Topic, Priority: d.Priority, EventType: d.EventType,
						PublisherID: d.PublisherID, Timestamp: d.Timestamp.UTC().Format(time.RFC3339Nano), Payload: payload})
					if err != nil {
						select {
						case failed <- err:
						default:
						}
						return err
					}
					if printed++; printed == count {
						close(enough)
					}
					return nil
				})
				if err != nil {
					node.Close()
					return c.fail(err)
				}
				log.Info("listening", "topics", strings.Join(topics, ","), "pool", pool, "endpoint", node.Endpoint(), "matchmaker", matchmaker.Redact(nf.matchmaker))
				code := 0
				select {
				case <-ctx.Done():
					log.Info("signal received; closing")
				case <-enough:
				case err := <-failed:
					code = c.fail(err)
				}
				l.Stop()
				if err := node.Close(); err != nil && code == 0 {
					return c.fail(fmt.Errorf("close: %w", err))
				}
				return code
			}
		},
	}
}
