package actors

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
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
// were suppressed in between. Safe for concurrent use.
type ThrottledLog = throttledLog

// NewThrottledLog logs through log at most once per interval.
func NewThrottledLog(log *slog.Logger, interval time.Duration) *ThrottledLog {
	return &throttledLog{log: log, interval: interval}
}

// throttledLog is ThrottledLog.
type throttledLog struct {
	log      *slog.Logger
	interval time.Duration
	last     atomic.Int64
	skipped  atomic.Uint64
}

// Warn logs msg with args at warning level, unless one was logged within
// the interval (then it is counted, and the count is added to the next).
func (t *throttledLog) Warn(msg string, args ...any) { t.emit(slog.LevelWarn, msg, args) }

// Error is Warn at error level.
func (t *throttledLog) Error(msg string, args ...any) { t.emit(slog.LevelError, msg, args) }

func (t *throttledLog) emit(level slog.Level, msg string, args []any) {
	now := time.Now().UnixNano()
	last := t.last.Load()
	if now-last < int64(t.interval) || !t.last.CompareAndSwap(last, now) {
		t.skipped.Add(1)
		return
	}
	if n := t.skipped.Swap(0); n > 0 {
		args = append(args, "suppressed", n)
	}
	t.log.Log(context.Background(), level, msg, args...)
}

// maxLogKeys bounds the distinct keys of a KeyedLog.
const maxLogKeys = 32

// KeyedLog is a ThrottledLog per key (a reason, a peer), so that one
// frequent event does not hide another; beyond maxLogKeys keys, the others
// share one. Safe for concurrent use.
type KeyedLog struct {
	log      *slog.Logger
	interval time.Duration
	mu       sync.Mutex
	byKey    map[string]*throttledLog
	rest     *throttledLog
}

// NewKeyedLog logs through log at most once per interval per key.
func NewKeyedLog(log *slog.Logger, interval time.Duration) *KeyedLog {
	return &KeyedLog{log: log, interval: interval, byKey: map[string]*throttledLog{},
		rest: &throttledLog{log: log, interval: interval}}
}

// Warn logs msg with args unless the key's was logged within the interval.
func (k *KeyedLog) Warn(key, msg string, args ...any) {
	k.mu.Lock()
	t, ok := k.byKey[key]
	if !ok {
		t = k.rest
		if len(k.byKey) < maxLogKeys {
			t = &throttledLog{log: k.log, interval: k.interval}
			k.byKey[key] = t
		}
	}
	k.mu.Unlock()
	t.Warn(msg, args...)
}
