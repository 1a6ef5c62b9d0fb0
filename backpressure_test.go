package relay_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relay-dev/relay"
)

// A full send queue is ErrBackPressure at once, or with WithWaitOnFull a
// wait within the deadline; never a silent drop.
func TestBackPressure(t *testing.T) {
	mm2 := newMatchmaker(t)
	slow := newNode(t, mm2, "slow")
	s, err := slow.Serve(compute)
	if err != nil {
		t.Fatal(err)
	}
	s.Handle("noop", func(context.Context, *relay.Request) (any, error) { return nil, nil })
	var handled atomic.Int64
	s.Handle("count", func(context.Context, *relay.Request) (any, error) { handled.Add(1); return nil, nil })
	fail := newNode(t, mm2, "fail", relay.WithQueueSize(1))
	ctx := ctxTimeout(t, 10*time.Second)
	sawFull := false
	for i := 0; i < 20000 && !sawFull; i++ {
		err := fail.Cast(ctx, compute, "noop", nil)
		if errors.Is(err, relay.ErrBackPressure) {
			sawFull = true
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if !sawFull {
		t.Error("a send queue of 1 never reported back-pressure in 20000 casts")
	}
	// The same casts, waiting for room: every one is sent and handled,
	// none dropped.
	wait := newNode(t, mm2, "wait", relay.WithQueueSize(1), relay.WithWaitOnFull(true))
	const n = 2000
	for i := 0; i < n; i++ {
		if err := wait.Cast(ctx, compute, "count", nil); err != nil {
			t.Fatalf("cast %d with WithWaitOnFull: %v", i, err)
		}
	}
	waitFor(t, 10*time.Second, func() error {
		if got := handled.Load(); got != n {
			return fmt.Errorf("%d of %d casts sent with WithWaitOnFull handled", got, n)
		}
		return nil
	})
	if st := wait.Stats(); st.DroppedCasts != 0 {
		t.Errorf("DroppedCasts = %d with WithWaitOnFull, want 0", st.DroppedCasts)
	}
}
