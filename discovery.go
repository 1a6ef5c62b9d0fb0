package relay

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/relay-dev/relay/matchmaker"
)

// discover returns every registration of t (the topology takes those it can
// use). When none is registered it waits for one up to the discovery wait
// (or the deadline, if sooner).
// now is the time of the caller's request (the cache's freshness is judged
// by it).
func (n *Node) discover(ctx context.Context, t Target, now, deadline time.Time) ([]string, error) {
	key := t.key()
	var timer *time.Timer
	for {
		addrs, changed, err := n.routes.lookupAt(ctx, key, now)
		if err != nil {
			switch {
			case errors.Is(err, matchmaker.ErrClosed):
				return nil, n.downErr()
			case errors.Is(err, ErrUnauthorized):
				return nil, fmt.Errorf("%w: every server registered for %s is refused: %v", ErrUnauthorized, t, err)
			}
			return nil, fmt.Errorf("relay: look up %s: %w", t, err)
		}
		if len(addrs) > 0 {
			return addrs, nil
		}
		if timer == nil {
			wait := n.opts.discoveryWait
			if d := time.Until(deadline); d < wait {
				wait = d
			}
			if wait <= 0 {
				return nil, fmt.Errorf("%w: %s%s", ErrNoServers, t, n.fileHint(t))
			}
			timer = time.NewTimer(wait)
			defer timer.Stop()
		}
		select {
		case <-changed:
			now = time.Now()
		case <-timer.C:
			return nil, fmt.Errorf("%w: %s (waited %v for one to register%s)", ErrNoServers, t, n.opts.discoveryWait, n.fileHint(t))
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				// The deadline cut the discovery wait short: what the
				// caller needs to know is that nobody serves the target.
				return nil, &noServersError{target: t, ctx: ctx.Err(), hint: n.fileHint(t)}
			}
			return nil, ctx.Err()
		case <-n.down:
			return nil, n.downErr()
		}
	}
}

// nextIndex advances the round-robin position of key.
func (n *Node) nextIndex(key matchmaker.Key, size int) int {
	v, ok := n.rr.Load(key)
	if !ok {
		// Start each node at a random place, so that short-lived clients
		// (one call each) do not all pick the same first server.
		start := new(atomic.Uint64)
		start.Store(rand.Uint64N(1 << 32))
		v, _ = n.rr.LoadOrStore(key, start)
	}
	return int((v.(*atomic.Uint64).Add(1) - 1) % uint64(size))
}

// noServersError is ErrNoServers when ctx's deadline ended the discovery
// wait; it matches context.DeadlineExceeded too.
type noServersError struct {
	target Target
	ctx    error
	hint   string
}

func (e *noServersError) Error() string {
	return fmt.Sprintf("%v: %s (none registered before the deadline%s)", ErrNoServers, e.target, e.hint)
}

func (e *noServersError) Is(target error) bool { return target == ErrNoServers || target == e.ctx }
