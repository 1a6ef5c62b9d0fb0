package relay_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relay-dev/relay"
)

// Handlers run on a bounded pool: beyond WithMaxHandlers requests wait for
// a free handler instead of piling up goroutines, and then succeed.
func TestMaxHandlers(t *testing.T) {
	mm := newMatchmaker(t)
	srv := newNode(t, mm, "s0", relay.WithMaxHandlers(2))
	s, err := srv.Serve(compute)
	if err != nil {
		t.Fatal(err)
	}
	var running, most atomic.Int64
	release := make(chan struct{})
	s.Handle("block", func(context.Context, *relay.Request) (any, error) {
		n := running.Add(1)
		defer running.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		<-release
		return nil, nil
	})
	client := newNode(t, mm, "client")
	ctx := ctxTimeout(t, 20*time.Second)
	const calls = 5
	errs := make(chan error, calls)
	for range calls {
		go func() { errs <- client.Call(ctx, compute, "block", nil, nil) }()
	}
	// Every call has reached the server: two run, three wait their turn.
	waitFor(t, 10*time.Second, func() error {
		if st := srv.Stats(); st.Handlers != 2 || st.Queued != calls-2 {
			return fmt.Errorf("handlers %d, queued %d; want 2 and %d", st.Handlers, st.Queued, calls-2)
		}
		return nil
	})
	close(release)
	for range calls {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if m := most.Load(); m != 2 {
		t.Errorf("%d handlers ran at once, want at most WithMaxHandlers(2) and 2 with 5 calls waiting", m)
	}
}

// A flood of casts into a node that cannot keep up: every cast that Cast
// accepted (nil) is handled, and the rest got ErrBackPressure, so nothing
// accepted is lost. The handler blocks until the caller first sees
// ErrBackPressure, so that the server's handler queue fills, it stops
// reading, and the back-pressure travels back over the wire (ZeroMQ's
// pipes, the kernel's TCP buffers) to the caller's send queue. Casts of
// 4 KiB fill those buffers in a few thousand.
func TestCastFloodNothingAcceptedIsLost(t *testing.T) {
	mm := newMatchmaker(t)
	small := []relay.Option{relay.WithHighWaterMark(4), relay.WithQueueSize(1000)}
	srv := newNode(t, mm, "s0", append(small, relay.WithMaxHandlers(4), relay.WithHandlerQueue(100))...)
	s, err := srv.Serve(compute)
	if err != nil {
		t.Fatal(err)
	}
	var handled atomic.Int64
	gate := make(chan struct{})
	var once sync.Once
	s.Handle("count", func(context.Context, *relay.Request) (any, error) {
		<-gate
		handled.Add(1)
		return nil, nil
	})
	client := newNode(t, mm, "client", small...)
	ctx := ctxTimeout(t, 60*time.Second)
	const casts = 20000
	payload := make([]byte, 4096)
	var accepted, refused int64
	for i := 0; i < casts; i++ {
		err := client.Cast(ctx, compute, "count", payload)
		switch {
		case err == nil:
			accepted++
		case errors.Is(err, relay.ErrBackPressure):
			refused++
			once.Do(func() { close(gate) }) // the caller saw it: let the server go
		default:
			t.Fatalf("cast %d: %v", i, err)
		}
	}
	once.Do(func() { close(gate) })
	if refused == 0 {
		t.Errorf("%d casts into a blocked server were all accepted: back-pressure never reached the caller", casts)
	}
	waitFor(t, 30*time.Second, func() error {
		if got := handled.Load(); got != accepted {
			return fmt.Errorf("handled %d of %d accepted casts", got, accepted)
		}
		return nil
	})
	if st := client.Stats(); st.DroppedCasts != 0 {
		t.Errorf("DroppedCasts = %d, want 0", st.DroppedCasts)
	}
	if st := srv.Stats(); st.FailedCasts != 0 || st.DroppedReplies != 0 {
		t.Errorf("server dropped work: %+v", st)
	}
	t.Logf("%d casts accepted and handled, %d refused with ErrBackPressure", accepted, refused)
}
