package matchmaker

import (
	"math/rand/v2"
	"time"
)

// Jitter returns d shortened by a random fraction of up to frac (0 to 1):
// a duration in (d·(1−frac), d], uniformly. Nodes that start together and
// wait Jitter(d, f) instead of d spread their next action over a window of
// d·f instead of acting in the same instant. Safe for concurrent use.
func Jitter(d time.Duration, frac float64) time.Duration {
	frac = min(max(frac, 0), 1)
	spread := time.Duration(float64(d) * frac)
	if spread <= 0 {
		return d
	}
	return d - rand.N(spread)
}

// RenewalInterval is how long a registration of lifetime ttl should wait
// before its next renewal: a third of ttl (so that two renewals can fail
// before it expires), shortened at random by up to a quarter of that, so
// that nodes started together (a registration storm) renew spread over a
// twelfth of the TTL rather than all at once. Call it anew for each wait.
func RenewalInterval(ttl time.Duration) time.Duration { return Jitter(ttl/3, 0.25) }
