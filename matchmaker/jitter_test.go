package matchmaker_test

import (
	"testing"
	"time"

	"github.com/relay-dev/relay/matchmaker"
)

func TestJitter(t *testing.T) {
	const d = 30 * time.Second
	lo, hi := d, time.Duration(0)
	for range 10000 {
		got := matchmaker.Jitter(d, 0.2)
		if got <= d-d/5 || got > d {
			t.Fatalf("Jitter(%v, 0.2) = %v, want in (%v, %v]", d, got, d-d/5, d)
		}
		lo, hi = min(lo, got), max(hi, got)
	}
	if hi-lo < d/10 {
		t.Errorf("Jitter(%v, 0.2) spread over %v only", d, hi-lo)
	}
	for _, frac := range []float64{0, -1} {
		if got := matchmaker.Jitter(d, frac); got != d {
			t.Errorf("Jitter(%v, %v) = %v, want %v", d, frac, got, d)
		}
	}
	if got := matchmaker.Jitter(d, 2); got <= 0 || got > d {
		t.Errorf("Jitter(%v, 2) = %v, want in (0, %v]", d, got, d)
	}
	ttl := 30 * time.Second
	for range 1000 {
		if got := matchmaker.RenewalInterval(ttl); got <= ttl/3-ttl/12 || got > ttl/3 {
			t.Fatalf("RenewalInterval(%v) = %v, want in (%v, %v]", ttl, got, ttl/3-ttl/12, ttl/3)
		}
	}
}
