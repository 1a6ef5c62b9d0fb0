package relay_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/relay-dev/relay"
	"github.com/relay-dev/relay/envelope"
	"github.com/relay-dev/relay/sockets"
)

// A message larger than WithMaxMessageSize fails at the caller at once,
// naming its size and the limit; one that reaches a server anyway (from a
// peer that does not check) is dropped and counted there, whole, before it
// is copied, and the server goes on serving.
func TestMessageTooLarge(t *testing.T) {
	const limit = 1 << 20
	mm := newMatchmaker(t)
	srv := newNode(t, mm, "s0", relay.WithMaxMessageSize(limit))
	serveDemo(t, srv, "s0")
	client := newNode(t, mm, "client", relay.WithMaxMessageSize(limit))
	big := make([]byte, limit+1)
	start := time.Now()
	err := client.Call(ctxTimeout(t, 10*time.Second), compute, "echo", big, nil)
	if !errors.Is(err, relay.ErrTooLarge) {
		t.Fatalf("call with %d bytes = %v, want ErrTooLarge", len(big), err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("the too large call failed after %v, want at once", took)
	}
	if msg := err.Error(); !strings.Contains(msg, fmt.Sprint(limit)) || !strings.Contains(msg, "WithMaxMessageSize") {
		t.Errorf("error %q does not name the limit and the option", msg)
	}
	if err := client.Cast(ctxTimeout(t, time.Second), compute, "add", big); !errors.Is(err, relay.ErrTooLarge) {
		t.Errorf("cast with %d bytes = %v, want ErrTooLarge", len(big), err)
	}

	// Straight to the server: one record just over the limit, and a
	// message of two frames that are each under it but not together.
	h := envelope.Header{Kind: envelope.KindCast, ID: envelope.NewMsgID(), Target: envelope.Target{Topic: "compute"}, Method: "add"}
	rec := h.AppendRecord(nil, make([]byte, limit))
	if err := sockets.SendRaw(ctxTimeout(t, 5*time.Second), srv.Endpoint(), rec); err != nil {
		t.Fatal(err)
	}
	half := make([]byte, limit/2+10)
	if err := sockets.SendRaw(ctxTimeout(t, 5*time.Second), srv.Endpoint(), half, half); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() error {
		if st := srv.Stats(); st.Oversized != 2 {
			return fmt.Errorf("Oversized = %d, want 2", st.Oversized)
		}
		return nil
	})
	if got := callInt(t, client, compute, "add", 1); got != 1 {
		t.Errorf("add 1 after the oversized messages = %d, want 1", got)
	}
}
