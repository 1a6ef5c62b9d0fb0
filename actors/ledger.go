package actors

import (
	"sync"
	"time"

	"github.com/relay-dev/relay/envelope"
)

// State is what a Ledger knows of a msg_id.
type State uint8

// The states of a request in a Ledger.
const (
	// New: not seen (or forgotten): run its handler.
	New State = iota
	// Running: its handler runs now; a resend gets no answer yet.
	Running
	// Done: its handler ran; a resend gets the remembered answer again.
	Done
)

// Ledger is a server's record of the requests with acks it took, by
// msg_id: whether each one's handler ran, and the answer it gave, so that a
// resent request runs its handler at most once and gets its answer again.
// A request is acknowledged (a cast) or answered (a call) only once it is
// Done here. Implementations are safe for concurrent use.
type Ledger interface {
	// Begin returns what the ledger knew of id, and records a New one as
	// Running. For a Done call, reply is its answer record, or nil with
	// evicted set when the answer was not kept (the byte bound).
	Begin(id envelope.MsgID) (state State, reply []byte, evicted bool)
	// Done records that id's handler finished, with its answer record (nil
	// for a cast). A durable ledger has written it when Done returns.
	Done(id envelope.MsgID, reply []byte) error
	// Forget drops a Running id whose handler will not run after all (the
	// node is closing), so that a resend runs it.
	Forget(id envelope.MsgID)
	// Close releases the ledger.
	Close() error
}

// MemoryLedger is a Ledger in memory: it remembers msg_ids for a TTL and
// at most memoryLedgerMax of them, and keeps answers up to a byte bound
// (the oldest answers go first, their ids stay). A process that ends loses
// it: a request resent to the next process runs again.
type MemoryLedger struct {
	maxBytes int

	// mu guards the fields below.
	mu    sync.Mutex
	ids   recent[envelope.MsgID, *ledgerEntry]
	bytes int              // answers kept
	kept  []envelope.MsgID // ids whose answers are kept, oldest first
	khead int
}

// memoryLedgerMax bounds a MemoryLedger's ids: at 100k acknowledged
// messages a second that is the last 10 s, whatever the TTL.
const memoryLedgerMax = 1 << 20

type ledgerEntry struct {
	done    bool
	evicted bool
	reply   []byte
}

// NewMemoryLedger remembers msg_ids for ttl and answers up to maxBytes in
// all (0: no bound).
func NewMemoryLedger(ttl time.Duration, maxBytes int) *MemoryLedger {
	return &MemoryLedger{maxBytes: maxBytes, ids: newRecent[envelope.MsgID, *ledgerEntry](ttl, memoryLedgerMax)}
}

// Begin implements Ledger.
func (l *MemoryLedger) Begin(id envelope.MsgID) (State, []byte, bool) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ids.expire(now, func(e *ledgerEntry) { l.bytes -= len(e.reply) })
	if e, ok := l.ids.get(id); ok {
		if e.done {
			return Done, e.reply, e.evicted
		}
		return Running, nil, false
	}
	l.ids.add(id, &ledgerEntry{}, now)
	return New, nil, false
}

// Done implements Ledger.
func (l *MemoryLedger) Done(id envelope.MsgID, reply []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.ids.get(id)
	if !ok {
		return nil // expired meanwhile
	}
	e.done = true
	if reply == nil {
		return nil
	}
	if l.maxBytes > 0 && len(reply) > l.maxBytes {
		e.evicted = true
		return nil
	}
	e.reply = reply
	l.bytes += len(reply)
	l.kept = append(l.kept, id)
	// Over the bound: the oldest answers go (their ids stay).
	for l.maxBytes > 0 && l.bytes > l.maxBytes && l.khead < len(l.kept) {
		old, _ := l.ids.get(l.kept[l.khead])
		l.khead++
		if old != nil && old.reply != nil {
			l.bytes -= len(old.reply)
			old.reply, old.evicted = nil, true
		}
	}
	if l.khead > len(l.kept)/2 {
		l.kept = append(l.kept[:0], l.kept[l.khead:]...)
		l.khead = 0
	}
	return nil
}

// Forget implements Ledger.
func (l *MemoryLedger) Forget(id envelope.MsgID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.ids.get(id); ok && !e.done {
		l.ids.remove(id)
	}
}

// Close implements Ledger.
func (l *MemoryLedger) Close() error { return nil }

// Bytes returns the bytes of the answers kept.
func (l *MemoryLedger) Bytes() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bytes
}
