package actors

import (
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/relay-dev/relay/internal/throttle"
)

// Counters count what a node dropped or refused, so that nothing is lost
// silently. All fields are updated atomically; read them with Snapshot.
type Counters struct {
	Malformed       atomic.Uint64 // inbound messages dropped: malformed frames or records
	UnknownVersion  atomic.Uint64 // inbound messages dropped: a protocol version this node does not speak
	Oversized       atomic.Uint64 // inbound messages dropped: larger than the node's maximum message size
	UnexpectedKind  atomic.Uint64 // well-formed messages of a kind this side does not take
	ExpiredRequests atomic.Uint64 // calls and casts skipped because their deadline had passed on arrival
	DroppedReplies  atomic.Uint64 // replies the poller could not deliver to their caller
	DroppedCasts    atomic.Uint64 // casts the sender could not send
	LateReplies     atomic.Uint64 // replies that arrived after their call ended (timeout, cancel)
	HandlerPanics   atomic.Uint64 // handler panics turned into remote errors
	FailedCasts     atomic.Uint64 // casts with no such method, or whose handler failed (no caller to tell)
	Duplicates      atomic.Uint64 // messages received again (resent) and handled once
	Resends         atomic.Uint64 // messages sent again for want of an ACK or a reply
	Failovers       atomic.Uint64 // calls with acks resent to another server of their topic, theirs gone
	LoopFailures    atomic.Uint64 // socket loops that failed and were restarted
	Cancelled       atomic.Uint64 // calls whose caller cancelled them while their handler ran (no answer sent)
	AcksSent        atomic.Uint64 // ACKs sent for requests that asked for one
	AcksReceived    atomic.Uint64 // ACKs received for this node's messages
	Refused         atomic.Uint64 // connections refused at their handshake (CURVE, ZAP), and requests from keys no longer allowed
	Untrusted       atomic.Uint64 // registrations not used: no CURVE key, or a key not on the allow-list, or a key where this node has none
	StrayReplies    atomic.Uint64 // answers that came on another connection than their call was sent on (forged or misrouted), dropped
}

// Stats is a point-in-time copy of Counters.
type Stats struct {
	Malformed, UnknownVersion, Oversized, UnexpectedKind, ExpiredRequests, DroppedReplies, DroppedCasts,
	LateReplies, HandlerPanics, FailedCasts, Duplicates, Resends, Failovers, LoopFailures, Cancelled, AcksSent, AcksReceived,
	Refused, Untrusted, StrayReplies uint64
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
