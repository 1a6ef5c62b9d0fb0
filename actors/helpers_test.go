package actors

import (
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/relay-dev/relay/envelope"
)

// discard is a logger that writes nothing.
var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// clock is a test's time: it moves only when the test says so.
type clock struct{ t time.Time }

func newClock() *clock          { return &clock{t: time.Unix(1_000_000, 0)} }
func (c *clock) now() time.Time { return c.t }

// add moves the clock on by d and returns the new time.
func (c *clock) add(d time.Duration) time.Time { c.t = c.t.Add(d); return c.t }

// idN returns a msg_id whose last byte (the Pending shard) is n.
func idN(n int) envelope.MsgID {
	id := envelope.NewMsgID()
	id[15] = byte(n)
	return id
}

// record encodes a record of kind k for id with body.
func record(k envelope.Kind, id envelope.MsgID, body []byte) []byte {
	h := envelope.Header{Kind: k, ID: id}
	return h.AppendRecord(nil, body)
}

// view reads the one record of rec.
func view(t *testing.T, rec []byte) *envelope.View {
	t.Helper()
	v, rest, err := envelope.Next(rec)
	if err != nil || len(rest) != 0 {
		t.Fatalf("record %x: %v, %d bytes left", rec, err, len(rest))
	}
	return &v
}

// waitFor calls f until it returns nil, failing the test with f's last
// error after timeout. (testutil imports the root package, which imports
// this one.)
func waitFor(t *testing.T, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	wait := time.Millisecond
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not true after %v: %v", timeout, err)
		}
		time.Sleep(wait)
		wait = min(2*wait, 50*time.Millisecond)
	}
}

// errIf returns an error saying what when bad.
func errIf(bad bool, format string, args ...any) error {
	if bad {
		return fmt.Errorf(format, args...)
	}
	return nil
}
