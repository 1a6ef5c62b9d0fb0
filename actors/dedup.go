package actors

import (
	"sync"
	"time"

	"github.com/relay-dev/relay/envelope"
)

// Dedup remembers recent msg_ids of published messages (fanouts and
// notifications in pub/sub mode), so that a message resent through
// another proxy is handled once. Unlike a Ledger it keeps no state per
// message beyond "seen": a receiver of a publish answers nothing. Safe
// for concurrent use.
type Dedup struct {
	// mu guards seen.
	mu   sync.Mutex
	seen recent[dedupKey, struct{}]
}

// dedupKey is a msg_id and the copy it is: the copies of one notification
// sent to different pools share the msg_id.
type dedupKey struct {
	id   envelope.MsgID
	copy string
}

// NewDedup remembers up to size ids, each for at most ttl.
func NewDedup(size int, ttl time.Duration) *Dedup {
	return &Dedup{seen: newRecent[dedupKey, struct{}](ttl, size)}
}

// First reports whether the copy of message id is new (and remembers it).
func (d *Dedup) First(id envelope.MsgID, copy string) bool {
	k := dedupKey{id: id, copy: copy}
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seen.expire(now, nil)
	if _, ok := d.seen.get(k); ok {
		return false
	}
	d.seen.add(k, struct{}{}, now)
	return true
}
