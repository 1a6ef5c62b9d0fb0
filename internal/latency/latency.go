// Package latency summarizes latency samples, for the benchmarks of relay
// and of raw libzmq alike.
package latency

import (
	"sort"
	"time"
)

// Summary holds percentiles (nearest rank) and the mean of samples.
type Summary struct {
	N    int           `json:"n"` // samples counted (warm-up excluded)
	P50  time.Duration `json:"p50_ns"`
	P99  time.Duration `json:"p99_ns"`
	Mean time.Duration `json:"mean_ns"`
}

// Summarize sorts samples in place and summarizes them. It returns the zero
// Summary for no samples.
func Summarize(samples []time.Duration) Summary {
	n := len(samples)
	if n == 0 {
		return Summary{}
	}
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	var sum time.Duration
	for _, d := range samples {
		sum += d
	}
	rank := func(pct int) int { return max((n*pct+99)/100-1, 0) }
	return Summary{N: n, P50: samples[rank(50)], P99: samples[rank(99)], Mean: sum / time.Duration(n)}
}
