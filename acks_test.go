package relay_test

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relay-dev/relay"
)

// dropSome loses the ACK of about a third of the messages, and of each one
// only the first time (so its resend is acknowledged); dropped records them.
func dropSome(dropped map[string]bool, mu *sync.Mutex) func(string) bool {
	return func(id string) bool {
		h := fnv.New32a()
		h.Write([]byte(id))
		if h.Sum32()%3 != 0 {
			return true
		}
		mu.Lock()
		defer mu.Unlock()
		if dropped[id] {
			return true
		}
		dropped[id] = true
		return false
	}
}

// With acks, a lost ACK makes the client resend, and the server still runs
// each handler once per msg_id: casts are applied once, calls answered from
// the remembered reply.
func TestAcksResendDedup(t *testing.T) {
	mm := newMatchmaker(t)
	var mu sync.Mutex
	runs := map[string]int{}
	ids := map[string]string{} // msg_id -> argument
	dropped := map[string]bool{}
	var servers []*relay.Node
	for i := 0; i < 2; i++ {
		n := newNode(t, mm, fmt.Sprintf("s%d", i), relay.WithAckFilter(dropSome(dropped, &mu)))
		servers = append(servers, n)
		s, err := n.Serve(compute)
		if err != nil {
			t.Fatal(err)
		}
		count := func(ctx context.Context, r *relay.Request) (any, error) {
			var arg string
			if err := r.Decode(&arg); err != nil {
				return nil, err
			}
			mu.Lock()
			runs[arg]++
			ids[r.ID] = arg
			mu.Unlock()
			return arg, nil
		}
		s.Handle("echo", count)
		s.Handle("apply", count)
	}
	client := newNode(t, mm, "client", relay.WithAcks(true), relay.WithRetry(20*time.Millisecond, 2, 6))
	ctx := ctxTimeout(t, 30*time.Second)
	const n = 200
	for i := 0; i < n; i++ {
		if err := client.Cast(ctx, compute, "apply", fmt.Sprintf("cast-%d", i)); err != nil {
			t.Fatal(err)
		}
		var got string
		want := fmt.Sprintf("call-%d", i)
		if err := client.Call(ctx, compute, "echo", want, &got); err != nil || got != want {
			t.Fatalf("call %d = %q, %v", i, got, err)
		}
	}
	waitFor(t, 10*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		for i := 0; i < n; i++ {
			for _, k := range []string{fmt.Sprintf("cast-%d", i), fmt.Sprintf("call-%d", i)} {
				if runs[k] != 1 {
					return fmt.Errorf("%s ran %d times, want once", k, runs[k])
				}
			}
		}
		return nil
	})
	// Each cast whose ACK was lost was resent, and each resend that reached
	// a server was counted there as a duplicate.
	mu.Lock()
	lostCastAcks := 0
	for id := range dropped {
		if strings.HasPrefix(ids[id], "cast-") {
			lostCastAcks++
		}
	}
	mu.Unlock()
	var dups uint64
	waitFor(t, 10*time.Second, func() error {
		dups = servers[0].Stats().Duplicates + servers[1].Stats().Duplicates
		if dups < uint64(lostCastAcks) {
			return fmt.Errorf("servers counted %d duplicates; %d casts lost their first ACK", dups, lostCastAcks)
		}
		return nil
	})
	st := client.Stats()
	if lostCastAcks == 0 || st.Resends < dups || st.DroppedCasts != 0 {
		t.Errorf("client stats %+v, servers' duplicates %d, casts that lost an ACK %d: want resends >= duplicates >= lost ACKs > 0 and no dropped casts",
			st, dups, lostCastAcks)
	}
	t.Logf("resends %d, duplicates %d, each handler ran once per msg_id", st.Resends, dups)
}

// With acks, killing the client's sender mid-load loses no call: what the
// old DEALERs held is resent.
func TestAcksSurviveSenderKill(t *testing.T) {
	mm := newMatchmaker(t)
	srv := newNode(t, mm, "s0")
	s, err := srv.Serve(compute)
	if err != nil {
		t.Fatal(err)
	}
	s.Handle("echo", func(_ context.Context, r *relay.Request) (any, error) {
		var i int
		err := r.Decode(&i)
		return i, err
	})
	client := newNode(t, mm, "client", relay.WithAcks(true), relay.WithRetry(20*time.Millisecond, 2, 8))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	stop := make(chan struct{})
	var calls atomic.Int64 // calls answered correctly
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				var got int
				err := client.Call(ctx, compute, "echo", g*1_000_000+i, &got)
				cancel()
				if err != nil || got != g*1_000_000+i {
					errs <- fmt.Errorf("call %d/%d = %d, %v", g, i, got, err)
					return
				}
				calls.Add(1)
			}
		}(g)
	}
	// Kill the sender in the middle of the load: after some calls, and
	// then until as many again have been answered by the new sender.
	waitCalls := func(n int64) {
		waitFor(t, 10*time.Second, func() error {
			if got := calls.Load(); got < n {
				return fmt.Errorf("%d calls answered, waiting for %d", got, n)
			}
			return nil
		})
	}
	waitCalls(200)
	if err := client.KillActor(relay.ActorDealers); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() error {
		if client.Restarts(relay.ActorDealers) < 1 {
			return errors.New("sender not restarted")
		}
		return nil
	})
	waitCalls(calls.Load() + 200)
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
