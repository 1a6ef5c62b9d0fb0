// Package renewal is the one renewal loop of relay's registrations, shared
// by nodes and proxies: it keeps a set of matchmaker registrations alive,
// with jitter, back-off after failures, and a new registration at once when
// the matchmaker lost them.
//
// Concurrency: a Loop's Run runs in the goroutine of its owner, which
// tracks and joins it; its fields are read, never written, by Run.
package renewal

import (
	"context"
	"log/slog"
	"time"

	"github.com/relay-dev/relay/matchmaker"
)

// renewBackoffMin is the first retry delay of a failed renewal; it doubles
// up to the renewal period.
const renewBackoffMin = 100 * time.Millisecond

// Loop keeps a set of registrations alive in the matchmaker: the one
// renewal loop of nodes and proxies. It registers every entry in one batch
// (one round trip to Redis), every third of the TTL less a random part (so
// that many nodes started together do not renew together); after a failure
// it retries with exponential back-off from renewBackoffMin; and when the
// matchmaker reports that it lost its registrations (Redis restarted
// empty), it registers again at once.
type Loop struct {
	MM      matchmaker.Matchmaker
	TTL     time.Duration
	Log     *slog.Logger
	Entries func() []matchmaker.Entry // what to keep registered, read at each renewal
	Result  func(error)               // when set, told each renewal's outcome
}

// Run renews until ctx ends or stop closes. kick, when it receives, renews
// at once (new registrations). Runs in its own goroutine.
func (r *Loop) Run(ctx context.Context, stop <-chan struct{}, kick <-chan struct{}) {
	period := r.TTL / 3
	backoff := time.Duration(0) // 0: the last renewal worked
	t := time.NewTimer(matchmaker.RenewalInterval(r.TTL))
	defer t.Stop()
	lost := r.MM.Lost()
	for {
		select {
		case <-ctx.Done():
			return
		case <-stop:
			return
		case <-t.C:
		case <-kick:
		case <-lost:
			lost = r.MM.Lost()
			r.Log.Warn("the matchmaker lost its registrations; registering again")
		}
		err := r.renew(ctx)
		if r.Result != nil {
			r.Result(err)
		}
		if err == nil {
			if backoff != 0 {
				r.Log.Info("registrations renewed again")
			}
			backoff = 0
			resetTimer(t, matchmaker.RenewalInterval(r.TTL))
			continue
		}
		backoff = nextBackoff(backoff, period)
		r.Log.Warn("registration renewal failed; retrying", "err", err, "retry_in", backoff)
		resetTimer(t, backoff)
	}
}

// renew registers every entry once, in one batch.
func (r *Loop) renew(ctx context.Context) error {
	entries := r.Entries()
	if len(entries) == 0 {
		return nil
	}
	return r.MM.RegisterMany(ctx, entries, r.TTL)
}

// resetTimer makes t fire after d (Go 1.23 timers: Reset needs no drain).
func resetTimer(t *time.Timer, d time.Duration) {
	t.Stop()
	t.Reset(d)
}

// nextBackoff doubles d from renewBackoffMin, capped at max.
func nextBackoff(d, max time.Duration) time.Duration {
	if d == 0 {
		return min(renewBackoffMin, max)
	}
	return min(2*d, max)
}
