package relay_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/relay-dev/relay"
)

// 10,000 calls (2,500 under -race) are pending at once, with deadlines spread over a second,
// half from their ctx and half from WithCallTimeout (those started spread
// over a second); the server never
// answers in time. Each call ends with ErrTimeout, not before its deadline
// and within a few milliseconds after it, and none is left pending.
func TestTenThousandPendingDeadlines(t *testing.T) {
	mm := newMatchmaker(t)
	srv := newNode(t, mm, "s0", relay.WithHandlerQueue(20_000))
	s, err := srv.Serve(compute)
	if err != nil {
		t.Fatal(err)
	}
	s.Handle("hang", func(ctx context.Context, _ *relay.Request) (any, error) {
		<-ctx.Done() // the request's deadline
		return nil, ctx.Err()
	})
	const timeout = 700 * time.Millisecond
	client := newNode(t, mm, "client", relay.WithCallTimeout(timeout), relay.WithQueueSize(20_000))
	// The server is known before the calls start, so that discovery does
	// not count.
	if err := client.Call(ctxTimeout(t, 5*time.Second), compute, "nosuch", nil, nil); !errors.Is(err, relay.ErrNoSuchMethod) {
		t.Fatalf("warm-up call: %v", err)
	}

	// Under -race a wake-up costs several times more: 2,500 calls there
	// put the same load on a 2-core machine as 10,000 without it.
	n := 10_000
	if raceEnabled {
		n = 2_500
	}
	overruns := make([]time.Duration, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var bad []string
	start := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			deadline := start.Add(timeout) // approximately: the call computes its own
			if i%2 == 0 {
				deadline = start.Add(200*time.Millisecond + time.Duration(i)*100*time.Microsecond)
				var cancel context.CancelFunc
				ctx, cancel = context.WithDeadline(ctx, deadline)
				defer cancel()
			}
			if i%2 != 0 {
				// Spread these deadlines over a second too, as the
				// others' are: 5,000 woken in the same millisecond
				// measure the scheduler, not the deadlines.
				time.Sleep(time.Duration(i) * 100 * time.Microsecond)
			}
			callStart := time.Now()
			err := client.Call(ctx, compute, "hang", i, nil)
			end := time.Now()
			if i%2 != 0 {
				deadline = callStart.Add(timeout)
			}
			overruns[i] = end.Sub(deadline)
			if !errors.Is(err, relay.ErrTimeout) || (i%2 == 0 && !errors.Is(err, context.DeadlineExceeded)) {
				mu.Lock()
				bad = append(bad, fmt.Sprintf("call %d: %v", i, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, b := range bad[:min(len(bad), 10)] {
		t.Error(b)
	}
	slices.Sort(overruns)
	if overruns[0] < 0 {
		t.Errorf("a call ended %v before its deadline", -overruns[0])
	}
	p50, p99, worst := overruns[n/2], overruns[n*99/100], overruns[n-1]
	t.Logf("%d pending calls: overrun after the deadline p50 %v, p99 %v, max %v", n, p50, p99, worst)
	// Quiet and without -race this is p50 < 1 ms; the bounds are for
	// -race on a loaded 2-core machine, and still fail a deadline that is
	// missed or found by a periodic scan.
	p50Max, worstMax := 100*time.Millisecond, 2*time.Second
	if raceEnabled {
		// Still fails a scan every half second or slower.
		p50Max, worstMax = 250*time.Millisecond, 3*time.Second
	}
	if p50 > p50Max || worst > worstMax {
		t.Errorf("calls ended too long after their deadlines: p50 %v, max %v", p50, worst)
	}
	if st := client.Stats(); st.Pending != 0 {
		t.Errorf("%d calls still pending after every call ended", st.Pending)
	}
}
