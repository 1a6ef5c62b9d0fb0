package relay_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/relay-dev/relay"
	"github.com/relay-dev/relay/internal/demo"
)

// Casts queued when Close begins are still delivered: Close drains the
// send queue and lets the sockets flush before closing them.
func TestCloseDeliversQueuedCasts(t *testing.T) {
	mm := newMatchmaker(t)
	srv := newNode(t, mm, "s0")
	s, err := srv.Serve(compute)
	if err != nil {
		t.Fatal(err)
	}
	ep := &demo.Endpoint{Host: "s0"}
	ep.Register(s)
	cli, err := relay.Start(context.Background(), relay.WithMatchmaker(mm), relay.WithHost("client"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	const casts = 500
	for i := 0; i < casts; i++ {
		if err := cli.Cast(ctx, compute, "add", 1); err != nil {
			t.Fatalf("cast %d: %v", i, err)
		}
	}
	if err := cli.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	dropped := cli.Stats().DroppedCasts
	waitFor(t, 5*time.Second, func() error {
		if got := ep.Casts(); uint64(got)+dropped != casts {
			return fmt.Errorf("server applied %d casts, client counted %d dropped, want %d in all", got, dropped, casts)
		}
		return nil
	})
	if dropped != 0 {
		t.Errorf("Close dropped %d casts that were queued before it", dropped)
	}
	if err := cli.Cast(ctx, compute, "add", 1); !errors.Is(err, relay.ErrClosed) {
		t.Errorf("cast after Close = %v, want ErrClosed", err)
	}
}
