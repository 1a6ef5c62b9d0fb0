package actors

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Counters count what a node (or a proxy) dropped or refused, so that
// nothing is lost silently. Each field is the atomic counter of the Stats
// field of the same name, where its meaning is documented; read them all
// with Snapshot.
type Counters struct {
	Malformed, UnknownVersion, Oversized, UnexpectedKind, ExpiredRequests, DroppedReplies, DroppedCasts,
	LateReplies, HandlerPanics, FailedCasts, Duplicates, Resends, LoopFailures, Cancelled, AcksSent, AcksReceived,
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
