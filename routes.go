package relay

import (
	"context"
	"sync"
	"time"

	"github.com/relay-dev/relay/matchmaker"
)

// routeMaxAge bounds how long a cached lookup is used without asking the
// matchmaker again, for changes the matchmaker does not announce (a
// registration that expired).
const routeMaxAge = time.Second

// routes caches matchmaker lookups so that a call does not ask the
// matchmaker each time. Any change the matchmaker announces makes every
// entry stale, and an entry older than routeMaxAge is stale too: a stale
// entry is looked up again, and used when the matchmaker cannot be reached.
// Safe for concurrent use.
type routes struct {
	mm matchmaker.Matchmaker
	// keepLost is how long after the matchmaker lost its registrations
	// (Redis restarted empty) an empty lookup keeps the routes known
	// before: their servers register again within it.
	keepLost time.Duration

	// mu guards the fields below.
	mu      sync.RWMutex
	changed <-chan struct{}
	lost    <-chan struct{}
	lostAt  time.Time
	entries map[matchmaker.Key]cached
}

type cached struct {
	addrs []string
	at    time.Time
}

func newRoutes(mm matchmaker.Matchmaker, keepLost time.Duration) *routes {
	return &routes{mm: mm, keepLost: keepLost, changed: mm.Changed(), lost: mm.Lost(), entries: make(map[matchmaker.Key]cached)}
}

// recentlyLost reports whether the matchmaker lost its registrations
// within keepLost of now.
func (r *routes) recentlyLost(now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-r.lost:
		r.lost, r.lostAt = r.mm.Lost(), now
	default:
	}
	return !r.lostAt.IsZero() && now.Sub(r.lostAt) < r.keepLost
}

// lookup returns the addresses registered under key, from the cache when
// it is fresh. It also returns the matchmaker's change channel as it was
// before the lookup, to wait on when nothing is registered.
func (r *routes) lookup(ctx context.Context, key matchmaker.Key) ([]string, <-chan struct{}, error) {
	return r.lookupAt(ctx, key, time.Now())
}

// lookupAt is lookup for a caller that knows the time already.
func (r *routes) lookupAt(ctx context.Context, key matchmaker.Key, now time.Time) ([]string, <-chan struct{}, error) {
	r.mu.RLock()
	changed := r.changed
	e, ok := r.entries[key]
	r.mu.RUnlock()
	select {
	case <-changed:
		r.mu.Lock()
		if r.changed == changed {
			r.changed = r.mm.Changed()
			// Stale, not gone: looked up again before use, but kept as
			// the fallback while the matchmaker is unreachable.
			for k, old := range r.entries {
				old.at = time.Time{}
				r.entries[k] = old
			}
		}
		changed = r.changed
		e, ok = r.entries[key]
		r.mu.Unlock()
	default:
	}
	if ok && len(e.addrs) > 0 && now.Sub(e.at) < routeMaxAge {
		return e.addrs, changed, nil
	}
	addrs, err := r.mm.Lookup(ctx, key)
	if err != nil {
		if ok && len(e.addrs) > 0 {
			// The matchmaker is unreachable: keep serving the routes we
			// know rather than failing calls to live servers.
			return e.addrs, changed, nil
		}
		return nil, changed, err
	}
	if len(addrs) == 0 && ok && len(e.addrs) > 0 && r.recentlyLost(now) {
		// Redis restarted empty: the servers are still there and are
		// registering again; until they have, use what we knew.
		return e.addrs, changed, nil
	}
	r.mu.Lock()
	if r.changed == changed {
		r.entries[key] = cached{addrs: addrs, at: now}
	}
	r.mu.Unlock()
	return addrs, changed, nil
}
