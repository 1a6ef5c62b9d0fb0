// Package throttle has rate-limited logs: an event logged at most once per
// interval, with the count of those suppressed in between added to the
// next line, so that a flood of one event neither floods the log nor goes
// unseen.
package throttle

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// New logs through log at most once per interval.
func New(log *slog.Logger, interval time.Duration) *Log {
	return &Log{log: log, interval: interval}
}

// Log logs an event at most once per interval and says how many were
// suppressed in between. Safe for concurrent use.
type Log struct {
	log      *slog.Logger
	interval time.Duration
	last     atomic.Int64
	skipped  atomic.Uint64
}

// Warn logs msg with args at warning level, unless one was logged within
// the interval (then it is counted, and the count is added to the next).
func (t *Log) Warn(msg string, args ...any) { t.emit(slog.LevelWarn, msg, args) }

// Error is Warn at error level.
func (t *Log) Error(msg string, args ...any) { t.emit(slog.LevelError, msg, args) }

func (t *Log) emit(level slog.Level, msg string, args []any) {
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

// maxLogKeys bounds the distinct keys of a Keyed.
const maxLogKeys = 32

// Keyed is a Log per key (a reason, a peer), so that one
// frequent event does not hide another; beyond maxLogKeys keys, the others
// share one. Safe for concurrent use.
type Keyed struct {
	log      *slog.Logger
	interval time.Duration
	mu       sync.Mutex
	byKey    map[string]*Log
	rest     *Log
}

// NewKeyed logs through log at most once per interval per key.
func NewKeyed(log *slog.Logger, interval time.Duration) *Keyed {
	return &Keyed{log: log, interval: interval, byKey: map[string]*Log{},
		rest: &Log{log: log, interval: interval}}
}

// Warn logs msg with args unless the key's was logged within the interval.
func (k *Keyed) Warn(key, msg string, args ...any) {
	k.mu.Lock()
	t, ok := k.byKey[key]
	if !ok {
		t = k.rest
		if len(k.byKey) < maxLogKeys {
			t = &Log{log: k.log, interval: k.interval}
			k.byKey[key] = t
		}
	}
	k.mu.Unlock()
	t.Warn(msg, args...)
}
