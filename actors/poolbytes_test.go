package actors

import (
	"testing"
	"time"

	"github.com/relay-dev/relay/envelope"
	"github.com/relay-dev/relay/internal/track"
)

// inboundOf returns a request whose record holds body.
func inboundOf(t *testing.T, body []byte) Inbound {
	t.Helper()
	h := envelope.Header{Kind: envelope.KindCast, ID: envelope.NewMsgID(), Method: "m"}
	v, _, err := envelope.Next(h.AppendRecord(nil, body))
	if err != nil {
		t.Fatal(err)
	}
	return Inbound{Rec: v}
}

// With a byte bound, the pool asks its loop to pause once the queued
// records hold that many bytes, long before the count bound, and resumes
// it once they hold less than half.
func TestPoolPausesAtItsByteBound(t *testing.T) {
	release := make(chan struct{})
	resumed := make(chan struct{}, 1)
	var group track.Group
	p := NewPool(func(*Inbound) { <-release }, &group, 1, 1000, func() { resumed <- struct{}{} })
	p.LimitBytes(10 << 10)
	defer func() { p.Close(); group.Wait() }()
	body := make([]byte, 3<<10)
	paused := -1
	for i := range 10 {
		if p.Submit([]Inbound{inboundOf(t, body)}) {
			paused = i
			break
		}
	}
	// One request runs (the worker holds it); 4 queued hold over 10 KiB.
	if paused < 3 || paused > 5 {
		t.Fatalf("paused after request %d, want after the 4th or 5th 3-KiB request (10 KiB bound)", paused)
	}
	if !p.Full() {
		t.Error("Full is false at the byte bound")
	}
	close(release)
	select {
	case <-resumed:
	case <-time.After(10 * time.Second):
		t.Fatal("not resumed once the queue drained")
	}
}
