package actors

import "time"

// recent is the bounded TTL set under both of relay's dedups (the
// MemoryLedger of requests with acks, and the Dedup of published
// messages): it remembers keys, each with a value, for a TTL and at most
// max of them; a key older than the TTL, or the oldest one beyond max, is
// forgotten at the next expire. Time is passed in, so that it can be
// tested without a clock. Not safe for concurrent use: its owner locks.
type recent[K comparable, V any] struct {
	ttl   time.Duration
	max   int
	byKey map[K]V
	order []arrival[K] // by arrival, for expiry; order[head:] are live
	head  int
}

// arrival is when a key was added.
type arrival[K comparable] struct {
	key K
	at  time.Time
}

// newRecent remembers keys for ttl, at most max of them (max > 0).
func newRecent[K comparable, V any](ttl time.Duration, max int) recent[K, V] {
	return recent[K, V]{ttl: ttl, max: max, byKey: make(map[K]V)}
}

// expire forgets the keys added more than the TTL before now, and the
// oldest ones while max are remembered (so that one more fits), calling
// forgotten, when set, with each one's value.
func (r *recent[K, V]) expire(now time.Time, forgotten func(V)) {
	for r.head < len(r.order) && (now.Sub(r.order[r.head].at) > r.ttl || len(r.order)-r.head >= r.max) {
		k := r.order[r.head].key
		if v, ok := r.byKey[k]; ok && forgotten != nil {
			forgotten(v)
		}
		delete(r.byKey, k)
		r.head++
	}
	if r.head > len(r.order)/2 { // compact now and then, not per key
		r.order = append(r.order[:0], r.order[r.head:]...)
		r.head = 0
	}
}

// get returns the value of a key remembered.
func (r *recent[K, V]) get(k K) (V, bool) {
	v, ok := r.byKey[k]
	return v, ok
}

// add remembers k with v, as added at now.
func (r *recent[K, V]) add(k K, v V, now time.Time) {
	r.byKey[k] = v
	r.order = append(r.order, arrival[K]{key: k, at: now})
}

// remove forgets k before its time.
func (r *recent[K, V]) remove(k K) { delete(r.byKey, k) }

// len returns how many keys are remembered.
func (r *recent[K, V]) len() int { return len(r.byKey) }
