package actors

import (
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/relay-dev/relay/internal/throttle"
)

// Counters count what a node (or a proxy) dropped or refused, so that
// nothing is lost silently. Each field is the atomic counter of the Stats
// field of the same name, where its meaning is documented; read them all
// with Snapshot.
type Counters struct {
	Malformed, UnknownVersion, Oversized, UnexpectedKind, ExpiredRequests, DroppedReplies, DroppedCasts,
	LateReplies, HandlerPanics, FailedCasts, Duplicates, Resends, Failovers, LoopFailures, Cancelled, AcksSent, AcksReceived,
	Refused, Untrusted, StrayReplies atomic.Uint64
}

// Stats is a point-in-time copy of Counters: what a node dropped or
// refused, counted. relay.Stats embeds it.
type Stats struct {
	Malformed       uint64 // inbound messages dropped as malformed (frames or records)
	UnknownVersion  uint64 // inbound messages dropped: a protocol version this node does not speak
	Oversized       uint64 // inbound messages dropped: larger than the maximum message size (WithMaxMessageSize)
	UnexpectedKind  uint64 // well-formed messages of a kind the receiver does not take
	ExpiredRequests uint64 // requests skipped: their deadline had passed on arrival
	DroppedReplies  uint64 // replies that could not be delivered to their caller
	DroppedCasts    uint64 // casts that could not be sent
	LateReplies     uint64 // replies that came after their call had ended (timeout, cancel)
	HandlerPanics   uint64 // handler panics, returned to callers as remote errors
	FailedCasts     uint64 // casts, fanouts and notifications whose handler failed or found no method or listener (logged)
	Duplicates      uint64 // messages received again (resent) and handled once
	Resends         uint64 // messages sent again for want of an ACK or a reply
	Failovers       uint64 // calls with acks (bare targets) resent to another server of the topic, theirs gone
	LoopFailures    uint64 // socket loops that failed (their actor restarted)
	Cancelled       uint64 // calls cancelled by their caller while their handler ran (no answer sent)
	AcksSent        uint64 // ACKs sent for requests that asked for one
	AcksReceived    uint64 // ACKs received for this node's messages
	Refused         uint64 // connections refused at their handshake (CURVE, ZAP), either side, and requests from keys no longer allowed (logged)
	Untrusted       uint64 // registrations not used: no CURVE key, a key not on the allow-list, or a key where this node has none (logged)
	StrayReplies    uint64 // answers that came on another connection than their call went out on (forged or misrouted), dropped
}

// Snapshot copies the counters.
func (c *Counters) Snapshot() Stats {
	return Stats{
		Malformed:       c.Malformed.Load(),
		UnknownVersion:  c.UnknownVersion.Load(),
		Oversized:       c.Oversized.Load(),
		UnexpectedKind:  c.UnexpectedKind.Load(),
		ExpiredRequests: c.ExpiredRequests.Load(),
		DroppedReplies:  c.DroppedReplies.Load(),
		DroppedCasts:    c.DroppedCasts.Load(),
		LateReplies:     c.LateReplies.Load(),
		HandlerPanics:   c.HandlerPanics.Load(),
		FailedCasts:     c.FailedCasts.Load(),
		Duplicates:      c.Duplicates.Load(),
		Resends:         c.Resends.Load(),
		Failovers:       c.Failovers.Load(),
		LoopFailures:    c.LoopFailures.Load(),
		Cancelled:       c.Cancelled.Load(),
		AcksSent:        c.AcksSent.Load(),
		AcksReceived:    c.AcksReceived.Load(),
		Refused:         c.Refused.Load(),
		Untrusted:       c.Untrusted.Load(),
		StrayReplies:    c.StrayReplies.Load(),
	}
}

// ThrottledLog logs an event at most once per interval and says how many
// were suppressed in between (package throttle). Safe for concurrent use.
type ThrottledLog = throttle.Log

// NewThrottledLog logs through log at most once per interval.
func NewThrottledLog(log *slog.Logger, interval time.Duration) *ThrottledLog {
	return throttle.New(log, interval)
}

// KeyedLog is a ThrottledLog per key (package throttle).
type KeyedLog = throttle.Keyed

// NewKeyedLog logs through log at most once per interval per key.
func NewKeyedLog(log *slog.Logger, interval time.Duration) *KeyedLog {
	return throttle.NewKeyed(log, interval)
}
