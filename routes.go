package relay

import (
	"context"
	"slices"
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
	// admit, when set, keeps the members a lookup found that this node
	// may use (trusted registrations), or says why none is; set before use.
	admit func(members []string) ([]string, error)

	// mu guards the fields below.
	mu      sync.RWMutex
	changed <-chan struct{}
	lost    <-chan struct{}
	lostAt  time.Time
	entries map[matchmaker.Key]cached
}

type cached struct {
	addrs []string
	err   error // why no member was admitted
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

// lookup returns the addresses registered under key that this node may
// use, from the cache when it is fresh. It also returns the matchmaker's
// change channel as it was before the lookup, to wait on when nothing is
// registered. When members are registered but none is admitted, the error
// says why (it wraps ErrUnauthorized).
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
	if ok && (len(e.addrs) > 0 || e.err != nil) && now.Sub(e.at) < routeMaxAge {
		return e.addrs, changed, e.err
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
	if ok && len(e.addrs) > 0 && r.recentlyLost(now) {
		// Redis restarted empty: the servers are still there and are
		// registering again; until they all have, use what we knew too
		// (a fanout meanwhile still reaches every server).
		if len(addrs) == 0 {
			return e.addrs, changed, nil
		}
		addrs = union(addrs, e.addrs)
	}
	var refused error
	if r.admit != nil && len(addrs) > 0 {
		addrs, refused = r.admit(addrs)
	}
	r.mu.Lock()
	if r.changed == changed {
		r.entries[key] = cached{addrs: addrs, err: refused, at: now}
	}
	r.mu.Unlock()
	return addrs, changed, refused
}

// union returns a followed by the members of b not in a.
func union(a, b []string) []string {
	out := a
	for _, x := range b {
		if !slices.Contains(a, x) {
			if len(out) == len(a) {
				out = slices.Clip(out)
			}
			out = append(out, x)
		}
	}
	return out
}
