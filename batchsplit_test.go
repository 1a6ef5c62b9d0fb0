package relay_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/relay-dev/relay"
	"github.com/relay-dev/relay/envelope"
	"github.com/relay-dev/relay/sockets"
)

// A wire batch whose inner record is damaged is split up to the damage:
// the records before it are served, the rest of the batch is dropped and
// counted once as malformed, and the same connection keeps working (a
// call sent on it next is answered on it).
func TestBatchSplitMalformedKeepsConnection(t *testing.T) {
	mm := newMatchmaker(t)
	server := newNode(t, mm, "s0")
	srv, err := server.Serve(compute)
	if err != nil {
		t.Fatal(err)
	}
	srv.Handle("echo", func(_ context.Context, r *relay.Request) (any, error) {
		var n int64
		err := r.Decode(&n)
		return n, err
	})
	d, err := sockets.DialRaw(server.Endpoint(), sockets.RawDealerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	// call returns a valid CALL of echo n and its msg_id.
	call := func(n int64) ([]byte, envelope.MsgID) {
		h, body := rawRequest(t, envelope.KindCall, "echo", n)
		return h.AppendRecord(nil, body), h.ID
	}
	// A truncated record is the batch's last: one cut short in the middle
	// would take its missing bytes from the next record, and what that
	// reads as depends on the bytes (PROTOCOL.md §7 counts a version byte
	// other than 2 as unknown version).
	cases := []struct {
		name   string
		damage func(rec []byte) []byte // applied to the batch's second record
		last   bool                    // no record after the damaged one
	}{
		{"truncated body", func(b []byte) []byte { return b[:len(b)-1] }, true},
		{"truncated header", func(b []byte) []byte { return b[:30] }, true},
		{"bad kind", func(b []byte) []byte { b[1] = 0xee; return b }, false},
		{"body length past the end", func(b []byte) []byte {
			b[len(b)-5] = 0x7f // the high byte of the body's length (a 1-byte body)
			return b
		}, false},
	}
	// Each batch: a good call, the damaged one, and unless it is the last
	// a good one after it; then a lone good call on the same connection.
	served := map[envelope.MsgID]int64{} // msg_id -> n, of the calls that must be answered
	var never []envelope.MsgID           // calls that must not be answered
	for i, c := range cases {
		base := int64(10 * (i + 1))
		first, firstID := call(base + 1)
		hit, hitID := call(base + 2)
		after, afterID := call(base + 3)
		lone, loneID := call(base + 4)
		batch := slices.Concat(first, c.damage(hit))
		if !c.last {
			batch = append(batch, after...)
		}
		if err := d.Send(batch); err != nil {
			t.Fatalf("%s: send batch: %v", c.name, err)
		}
		waitFor(t, 5*time.Second, func() error {
			if got := server.Stats().Malformed; got != uint64(i+1) {
				return fmt.Errorf("after the batch with %s: Malformed = %d, want %d", c.name, got, i+1)
			}
			return nil
		})
		if err := d.Send(lone); err != nil {
			t.Fatalf("%s: send the call after the batch: %v", c.name, err)
		}
		served[firstID], served[loneID] = base+1, base+4
		never = append(never, hitID, afterID)
		// The replies come back on this connection.
		want := map[envelope.MsgID]int64{firstID: base + 1, loneID: base + 4}
		for len(want) > 0 {
			m, err := d.Recv(5 * time.Second)
			if err != nil {
				t.Fatalf("%s: %d replies missing on the connection: %v", c.name, len(want), err)
			}
			for _, f := range m {
				if _, err := envelope.Records(f, func(v *envelope.View) bool {
					h := v.Header()
					var got int64
					if h.Kind != envelope.KindReply {
						t.Errorf("%s: got %v for %s, want a reply", c.name, h.Kind, h.ID)
					} else if err := envelope.DecodeBody(v.Body(), &got); err != nil {
						t.Errorf("%s: reply body: %v", c.name, err)
					}
					n, ok := want[h.ID]
					switch {
					case slices.Contains(never, h.ID):
						t.Errorf("%s: a record at or after the damage was answered (%s)", c.name, h.ID)
					case !ok:
						t.Errorf("%s: unexpected reply to %s", c.name, h.ID)
					case got != n:
						t.Errorf("%s: echo %d answered %d", c.name, n, got)
					}
					delete(want, h.ID)
					return true
				}); err != nil {
					t.Fatalf("%s: reply frame malformed: %v", c.name, err)
				}
			}
		}
	}
	if m, err := d.Recv(200 * time.Millisecond); err == nil {
		t.Errorf("an extra message came after every good call was answered: %d frames", len(m))
	}
	st := server.Stats()
	if st.Malformed != uint64(len(cases)) || st.LoopFailures != 0 || st.Restarts[relay.ActorRouter] != 0 {
		t.Errorf("stats %+v: want Malformed %d, no loop failure, no restart", st, len(cases))
	}
	t.Logf("%d damaged batches dropped from the damage on; %d calls answered on the same connection", len(cases), len(served))
}
