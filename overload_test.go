package relay_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/relay-dev/relay"
)

// Handlers are bounded: beyond WithMaxHandlers a call is refused at once
// with "Overloaded" instead of piling up goroutines.
func TestMaxHandlers(t *testing.T) {
	mm := newMatchmaker(t)
	srv := newNode(t, mm, "s0", relay.WithMaxHandlers(1))
	s, err := srv.Serve(compute)
	if err != nil {
		t.Fatal(err)
	}
	started, release := make(chan struct{}), make(chan struct{})
	s.Handle("block", func(context.Context, *relay.Request) (any, error) {
		close(started)
		<-release
		return nil, nil
	})
	s.Handle("noop", func(context.Context, *relay.Request) (any, error) { return nil, nil })
	client := newNode(t, mm, "client")
	ctx := ctxTimeout(t, 10*time.Second)
	blocked := make(chan error, 1)
	go func() { blocked <- client.Call(ctx, compute, "block", nil, nil) }()
	<-started
	var re *relay.RemoteError
	if err := client.Call(ctx, compute, "noop", nil, nil); !errors.As(err, &re) || re.Code != relay.CodeOverloaded {
		t.Errorf("call beyond the handler bound = %v, want RemoteError %s", err, relay.CodeOverloaded)
	}
	close(release)
	if err := <-blocked; err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() error { return client.Call(ctx, compute, "noop", nil, nil) })
}
