package relay_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/relay-dev/relay"
)

// Each socket actor of each side is killed while many callers keep batches
// in flight. With acks nothing is lost: every call succeeds and every cast
// that Cast accepted is applied exactly once (checked per message). Without
// acks every call still ends with exactly one outcome, by its deadline.
func TestKillSocketActorsWithBatchesInFlight(t *testing.T) {
	for _, acks := range []bool{true, false} {
		for _, side := range []string{"client", "server"} {
			for _, actor := range []string{relay.ActorRouter, relay.ActorDealers} {
				name := fmt.Sprintf("acks=%v/%s/%s", acks, side, actor)
				t.Run(name, func(t *testing.T) { testKillWithBatches(t, acks, side, actor) })
			}
		}
	}
}

func testKillWithBatches(t *testing.T, acks bool, side, actor string) {
	mm := newMatchmaker(t)
	var reported sync.Map // key -> error: casts reported undelivered
	opts := []relay.Option{relay.WithAcks(acks), relay.WithRetry(20*time.Millisecond, 2, 8), relay.WithLossReports(true)}
	server := newNode(t, mm, "s0", opts...)
	s, err := server.Serve(compute)
	if err != nil {
		t.Fatal(err)
	}
	var applied sync.Map // key -> *atomic.Int64
	apply := func(_ context.Context, r *relay.Request) (any, error) {
		var key int64
		if err := r.Decode(&key); err != nil {
			return nil, err
		}
		v, _ := applied.LoadOrStore(key, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
		return key, nil
	}
	s.Handle("apply", apply)
	client := newNode(t, mm, "client", append(opts, relay.WithUndelivered(func(u relay.Undelivered) {
		var key int64
		if err := msgpack.Unmarshal(u.Body, &key); err != nil {
			t.Errorf("undelivered %s: body %x: %v", u.ID, u.Body, err)
			return
		}
		reported.Store(key, u.Err)
	}))...)
	victim := map[string]*relay.Node{"client": client, "server": server}[side]

	const callers = 16
	const deadline = 3 * time.Second
	var (
		stop         sync.WaitGroup
		done         = make(chan struct{})
		next         atomic.Int64
		mu           sync.Mutex
		calls, casts []int64 // keys of calls that succeeded, casts accepted
		failed       []error
		late         []time.Duration
		ok           atomic.Int64
	)
	for range callers {
		stop.Add(1)
		go func() {
			defer stop.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				key := next.Add(1)
				ctx, cancel := context.WithTimeout(context.Background(), deadline)
				start := time.Now()
				var err error
				if key%2 == 0 {
					var got int64
					err = client.Call(ctx, compute, "apply", key, &got)
					if err == nil && got != key {
						err = fmt.Errorf("call %d answered %d", key, got)
					}
				} else {
					err = client.Cast(ctx, compute, "apply", key)
				}
				cancel()
				elapsed := time.Since(start)
				mu.Lock()
				switch {
				case err == nil && key%2 == 0:
					calls = append(calls, key)
				case err == nil:
					casts = append(casts, key)
				default:
					failed = append(failed, err)
				}
				if elapsed > deadline+time.Second {
					late = append(late, elapsed)
				}
				mu.Unlock()
				if err == nil {
					ok.Add(1)
				}
			}
		}()
	}
	waitOK := func(n int64) {
		waitFor(t, 20*time.Second, func() error {
			if got := ok.Load(); got < n {
				return fmt.Errorf("%d requests ok, waiting for %d", got, n)
			}
			return nil
		})
	}
	waitOK(2000)
	if err := victim.KillActor(actor); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() error {
		if victim.Restarts(actor) < 1 {
			return fmt.Errorf("%s of %s not restarted", actor, side)
		}
		return nil
	})
	waitOK(ok.Load() + 2000)
	close(done)
	stop.Wait()

	mu.Lock()
	defer mu.Unlock()
	if len(late) > 0 {
		t.Errorf("%d requests with a %v deadline took longer than it plus 1s (longest %v): not one outcome by the deadline", len(late), deadline, slicesMax(late))
	}
	for _, err := range failed {
		if acks {
			t.Errorf("with acks a request failed: %v", err)
		} else if !errors.Is(err, relay.ErrTimeout) && !errors.Is(err, relay.ErrBackPressure) {
			t.Errorf("request failed with %v, want ErrTimeout or ErrBackPressure", err)
		}
	}
	count := func(key int64) int64 {
		if v, ok := applied.Load(key); ok {
			return v.(*atomic.Int64).Load()
		}
		return 0
	}
	for _, key := range calls {
		if n := count(key); n != 1 {
			t.Errorf("call %d succeeded but was applied %d times", key, n)
		}
	}
	if !acks {
		// Without acks a cast may be lost, but never silently: each
		// accepted one is applied, or reported to WithUndelivered.
		waitFor(t, 10*time.Second, func() error {
			lost := 0
			for _, key := range casts {
				if _, rep := reported.Load(key); count(key) == 0 && !rep {
					lost++
				}
			}
			if lost > 0 {
				return fmt.Errorf("%d of %d accepted casts neither applied nor reported", lost, len(casts))
			}
			return nil
		})
	}
	if acks {
		// Accepted casts are resent until acknowledged: wait for all.
		waitFor(t, 10*time.Second, func() error {
			for _, key := range casts {
				if count(key) == 0 {
					return fmt.Errorf("accepted cast %d not applied yet", key)
				}
			}
			return nil
		})
		for _, key := range casts {
			if n := count(key); n != 1 {
				t.Errorf("cast %d applied %d times, want exactly once", key, n)
			}
		}
	}
	var nReported, reportedApplied int
	reported.Range(func(key, _ any) bool {
		nReported++
		if count(key.(int64)) > 0 {
			reportedApplied++
		}
		return true
	})
	t.Logf("%d calls ok, %d casts accepted (%d reported undelivered, %d of them applied), %d failed; client %+v; server %+v",
		len(calls), len(casts), nReported, reportedApplied, len(failed), client.Stats(), server.Stats())
}

func slicesMax(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}
