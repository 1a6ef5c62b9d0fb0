package relay

import (
	"errors"
	"fmt"
	"time"

	"github.com/relay-dev/relay/actors"
	"github.com/relay-dev/relay/envelope"
	"github.com/relay-dev/relay/sockets"
)

// ErrUndelivered: a one-way message (a cast, fanout or notification) that
// Cast or Notify had accepted could not be delivered. It reaches the
// WithUndelivered hook, never a caller: Cast had returned already.
var ErrUndelivered = errors.New("relay: message not delivered")

// ErrConnectionLost: the connection a one-way message without acks was
// sent on dropped (its server or proxy restarted a socket, or its process
// died) while the message may still have been unread. It may have been
// delivered: the sender decides whether to send it again (with acks, the
// node resends and the server's dedup decides for it).
var ErrConnectionLost = errors.New("relay: connection lost with the message possibly unread")

// Undelivered is a one-way message the node accepted (Cast, Notify or a
// fanout returned nil) and then could not deliver: with acks, no ACK came
// by its deadline; without, its connection failed or was not made by the
// deadline, or dropped with it possibly unread (ErrConnectionLost: it may
// have arrived), or the node closed with it unsent. Everything but Err is read
// back from the message as it was sent.
type Undelivered struct {
	ID       string    // its msg_id
	Kind     Kind      // KindCast, KindFanout or KindNotify
	Target   Target    // the target it was sent to
	Method   string    // the method (a notification: its event type)
	Header   Header    // the headers sent with it (nil when none)
	Body     []byte    // its arguments, msgpack-encoded as sent; the hook's to keep
	Peer     string    // where it was going: a server, a router or publisher proxy
	Deadline time.Time // its deadline
	Attempts int       // resends made (with acks)
	Err      error     // why; matches ErrUndelivered, and ErrConnectionLost, ErrUnauthorized or ErrClosed when that is why
}

// WithUndelivered calls f for every one-way message the node accepted and
// could not deliver (see Undelivered), so that the sender learns which
// message it was and can send it again, store it or report it; each is
// also counted in Stats().DroppedCasts. f runs on one of the node's own
// goroutines (the one that gave up on the message) and must return
// quickly: hand slow work to a goroutine of your own. Without it, drops
// are counted and logged (rate-limited) only. Default none.
func WithUndelivered(f func(Undelivered)) Option { return func(o *options) { o.undelivered = f } }

// undelivered reports a one-way message the node gave up on: counted,
// logged (rate-limited) and handed to the WithUndelivered hook. rec is the
// record as sent; attempts the resends made.
func (n *Node) undelivered(peer string, rec []byte, attempts int, cause error) {
	n.counters.DroppedCasts.Add(1)
	n.dropped.Warn("message dropped: not delivered", "peer", peer, "err", cause)
	if n.opts.undelivered == nil {
		return
	}
	v, _, err := envelope.Next(rec)
	if err != nil {
		return // not a record this node could have made
	}
	u := Undelivered{
		ID: v.ID().String(), Kind: requestKind(v.Kind(), &v), Method: string(v.Method()),
		Body: append([]byte(nil), v.Body()...), Peer: peer, Deadline: deadlineTime(v.Deadline()), Attempts: attempts,
		Target: Target{Exchange: string(v.Exchange()), Topic: string(v.Topic()), Server: string(v.Server()),
			Namespace: string(v.Namespace()), Version: string(v.Version()), Fanout: v.Fanout()},
	}
	if meta := v.Meta(); len(meta) > 0 {
		u.Header, _ = decodeMeta(meta) // this node encoded it
	}
	switch {
	case errors.Is(cause, actors.ErrNoAck):
		u.Err = fmt.Errorf("%w: no acknowledgement from %s before its deadline (%d resends)", ErrUndelivered, peer, attempts)
	case errors.Is(cause, sockets.ErrConnectionLost):
		u.Err = fmt.Errorf("%w: %w: to %s", ErrUndelivered, ErrConnectionLost, peer)
	case errors.Is(cause, sockets.ErrUnauthorized):
		u.Err = fmt.Errorf("%w: %w: %v", ErrUndelivered, ErrUnauthorized, cause)
	case errors.Is(cause, ErrClosed) || errors.Is(cause, sockets.ErrStopped):
		u.Err = fmt.Errorf("%w: %w: %v", ErrUndelivered, ErrClosed, cause)
	default:
		u.Err = fmt.Errorf("%w: to %s: %v", ErrUndelivered, peer, cause)
	}
	n.opts.undelivered(u)
}

// settled ends c, a one-way message with acks (a cast, a publish, a
// durable cast sent again), with res: acknowledged; or reported by the
// resender at its deadline (ErrNoAck); or failed otherwise (refused by
// CURVE, the node closing), which is reported here. A durable cast cut
// short by the node's close stays stored: the next process sends it.
func (n *Node) settled(c *actors.Call, res actors.Result, durable bool) {
	keep := durable && errors.Is(res.Err, ErrClosed)
	if durable && !keep {
		n.store.DeleteCastLater(c.ID)
	}
	if res.Err != nil && !errors.Is(res.Err, actors.ErrNoAck) && !keep {
		n.undelivered(c.Addr, c.Rec, 0, res.Err)
	}
}
