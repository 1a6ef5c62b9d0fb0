package relay

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/relay-dev/relay/envelope"
	"github.com/relay-dev/relay/matchmaker"
)

// Priorities are the notification priorities, lowest first. A listener's
// topic "T" receives priority p as "T.p".
var Priorities = []string{"audit", "debug", "info", "warn", "error", "critical", "sample"}

// notifyExchange is the matchmaker exchange of listener registrations.
const notifyExchange = "$notify"

// Notification is an event published by topic and priority.
type Notification struct {
	Topic       string
	Priority    string // one of Priorities; default "info"
	EventType   string
	PublisherID string // default: the publishing node's host
	Payload     any
	Timestamp   time.Time // default: when Notify was called
}

// Delivery is a notification received by a listener.
type Delivery struct {
	Notification // Payload is nil: use Decode
	// ID is the message id (32 hex digits).
	ID string
	// Header holds the headers the publisher sent (nil when none).
	Header Header

	payload []byte
}

// Decode decodes the notification's payload into v, a pointer.
func (d *Delivery) Decode(v any) error {
	if err := envelope.DecodeBody(d.payload, v); err != nil {
		return fmt.Errorf("relay: decode payload of %s event %q into %T: %w", d.Topic, d.EventType, v, err)
	}
	return nil
}

// notifyBody is the msgpack body of a NOTIFY message (docs/PROTOCOL.md).
type notifyBody struct {
	PublisherID string             `msgpack:"publisher_id"`
	Priority    string             `msgpack:"priority"`
	Timestamp   int64              `msgpack:"timestamp"` // Unix ns
	Payload     msgpack.RawMessage `msgpack:"payload"`
}

// decodeNotifyBody decodes the body of a NOTIFY message, as received.
func decodeNotifyBody(b []byte) (notifyBody, error) {
	var body notifyBody
	err := msgpack.Unmarshal(b, &body)
	return body, err
}

// Notify publishes note to every listener pool of its topic and priority:
// one listener of each pool receives it; a listener without a pool is a
// pool of its own. It returns once the messages are queued; with no
// listener registered it returns ErrNoServers. It carries ctx's headers
// (WithHeader).
func (n *Node) Notify(ctx context.Context, note Notification) error {
	if n.invoke != nil {
		deadline, ok := ctx.Deadline()
		if !ok {
			deadline = time.Now().Add(n.opts.callTimeout)
		}
		t := Target{Exchange: notifyExchange, Topic: note.Topic}
		return n.intercepted(ctx, KindNotify, t, note.EventType, deadline, note, nil)
	}
	return n.notify(ctx, note, outgoingOf(ctx))
}

// notify is Notify with the headers to send (out, nil for none): one copy
// to each listener pool of the topic, the topology's way.
func (n *Node) notify(ctx context.Context, note Notification, out *outgoing) error {
	select {
	case <-n.down:
		return n.downErr()
	default:
	}
	body, err := n.encodeNotification(&note)
	if err != nil {
		return err
	}
	topic := note.Topic + "." + note.Priority
	pools, err := n.listenerPools(ctx, topic)
	if err != nil {
		return err
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(n.opts.callTimeout)
	}
	headers := out.headers()
	for pool, addrs := range pools {
		addr := addrs[n.nextIndex(matchmaker.Key{Exchange: notifyExchange, Topic: topic, Server: pool}, len(addrs))]
		hdr := envelope.Header{
			Kind: envelope.KindNotify, ID: envelope.NewMsgID(), // one per copy: each may wait for its own ACK
			Deadline: deadline.UnixNano(),
			Target:   envelope.Target{Exchange: notifyExchange, Topic: topic, Server: pool},
			Method:   note.EventType, ReplyTo: n.id,
		}
		if err := n.topo.notify(ctx, &hdr, body, addr, deadline, headers); err != nil {
			return err
		}
	}
	return nil
}

// encodeNotification checks note, fills in its defaults, and encodes it
// (the body of a NOTIFY).
func (n *Node) encodeNotification(note *Notification) ([]byte, error) {
	if note.Priority == "" {
		note.Priority = "info"
	}
	if !slices.Contains(Priorities, note.Priority) {
		return nil, fmt.Errorf("%w: priority %q is not one of %v", ErrBadTarget, note.Priority, Priorities)
	}
	if note.Topic == "" {
		return nil, fmt.Errorf("%w: notification without Topic", ErrBadTarget)
	}
	if note.PublisherID == "" {
		note.PublisherID = n.opts.host
	}
	if note.Timestamp.IsZero() {
		note.Timestamp = time.Now()
	}
	payload, err := envelope.EncodeBody(note.Payload)
	if err != nil {
		return nil, fmt.Errorf("relay: notify %s: encode payload %T: %w", note.Topic, note.Payload, err)
	}
	body, err := msgpack.Marshal(&notifyBody{PublisherID: note.PublisherID, Priority: note.Priority,
		Timestamp: note.Timestamp.UnixNano(), Payload: payload})
	if err != nil {
		return nil, fmt.Errorf("relay: notify %s: encode: %w", note.Topic, err)
	}
	return body, nil
}

// listenerPools returns the listeners registered for topic ("T.p"), by
// pool: each pool gets one copy of a notification.
func (n *Node) listenerPools(ctx context.Context, topic string) (map[string][]string, error) {
	members, _, err := n.routes.lookup(ctx, matchmaker.Key{Exchange: notifyExchange, Topic: topic})
	if err != nil {
		return nil, fmt.Errorf("relay: notify %s: look up listeners: %w", topic, err)
	}
	pools := make(map[string][]string)
	for _, m := range members {
		pool, addr, ok := strings.Cut(m, "|")
		if ok {
			pools[pool] = append(pools[pool], addr)
		}
	}
	if len(pools) == 0 {
		return nil, fmt.Errorf("%w: no listener for notifications %s", ErrNoServers, topic)
	}
	return pools, nil
}
