package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/relay-dev/relay"
)

// FloodResult is the result of Flood: what Cast accepted, what it refused,
// and what the receiver handled.
type FloodResult struct {
	N        int    `json:"n"`        // casts attempted
	Accepted int    `json:"accepted"` // Cast returned nil
	Refused  int    `json:"refused"`  // Cast returned ErrBackPressure (not retried)
	Handled  int    `json:"handled"`  // the receiver's handler ran
	Lost     int    `json:"lost"`     // accepted but not handled: relay's promise says 0
	Dropped  uint64 `json:"dropped"`  // the client node's Stats().DroppedCasts
	// Complete is false when the receiver stalled for castStall before it
	// had handled every accepted cast.
	Complete bool          `json:"complete"`
	Elapsed  time.Duration `json:"elapsed_ns"` // first cast to the last handled (or the stall)
}

// Flood casts n times as fast as Cast returns, without retrying what it
// refuses, then waits until the receiver has handled every accepted cast,
// or has handled none more for castStall. A cast accepted with a nil error
// and never handled is Lost: the number relay promises to keep at 0.
func Flood(ctx context.Context, n, size int) (res FloodResult, err error) {
	p, payload, err := measuredPair(ctx, "flood", mode{}, n, size)
	if err != nil {
		return FloodResult{}, err
	}
	defer p.close(&err)

	res.N = n
	start := time.Now()
	for i := 0; i < n; i++ {
		switch err := p.client.Cast(ctx, target, "count", payload); {
		case err == nil:
			res.Accepted++
		case errors.Is(err, relay.ErrBackPressure):
			res.Refused++
		default:
			return res, fmt.Errorf("bench: flood: cast %d: %w", i, err)
		}
	}
	if res.Complete, err = p.waitCount(ctx, int64(res.Accepted)); err != nil {
		return res, err
	}
	res.Elapsed = time.Since(start)
	res.Handled = int(p.count.Load())
	res.Lost = max(res.Accepted-res.Handled, 0)
	res.Dropped = p.client.Stats().DroppedCasts
	return res, nil
}
