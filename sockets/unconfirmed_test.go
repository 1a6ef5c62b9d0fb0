package sockets

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// The ring keeps a copy of each unconfirmed record while it may be unread,
// hands them back in order when the connection drops, and forgets one once
// more bytes than the buffers hold were sent after it, or unreadAge passed.
func TestUnconfirmedKeepsWhatMayBeUnread(t *testing.T) {
	u := newUnconfirmed(Options{HWM: 2, KernelBuffer: 1 << 10})
	// atRisk = (2+2) × 64 KiB + 4 KiB.
	if want := int64(4*maxBatch + 4<<10); u.atRisk != want {
		t.Fatalf("atRisk %d, want %d", u.atRisk, want)
	}
	now := time.Now().UnixNano()
	rec := func(i int) []byte { return []byte(fmt.Sprintf("cast-%04d", i)) }
	for i := range 10 {
		u.sentRec(rec(i), track(i%2 == 0), [16]byte{}, now) // odd ones are confirmed by other means
	}
	var got []string
	collect := func(r []byte) { got = append(got, string(r)) }
	u.lost(now, collect)
	want := []string{"cast-0000", "cast-0002", "cast-0004", "cast-0006", "cast-0008"}
	if !slices.Equal(got, want) {
		t.Fatalf("lost %q, want %q", got, want)
	}
	got = nil
	u.lost(now, collect)
	if len(got) != 0 {
		t.Fatalf("a second drop reported %q again", got)
	}

	// Past atRisk bytes sent after it, a record is read for sure.
	u.sentRec(rec(1), Unconfirmed, [16]byte{}, now)
	big := make([]byte, maxBatch)
	for range 4 {
		u.sentRec(big, Untracked, [16]byte{}, now)
	}
	u.sentRec(rec(2), Unconfirmed, [16]byte{}, now)
	got = nil
	u.lost(now, collect)
	if want := []string{"cast-0001", "cast-0002"}; !slices.Equal(got, want) {
		t.Fatalf("within atRisk: lost %q, want %q", got, want)
	}
	u.sentRec(rec(1), Unconfirmed, [16]byte{}, now)
	for range 5 {
		u.sentRec(big, Untracked, [16]byte{}, now)
	}
	u.sentRec(rec(2), Unconfirmed, [16]byte{}, now)
	got = nil
	u.lost(now, collect)
	if want := []string{"cast-0002"}; !slices.Equal(got, want) {
		t.Fatalf("past atRisk: lost %q, want %q", got, want)
	}

	// Old enough, it is read too.
	u.sentRec(rec(3), Unconfirmed, [16]byte{}, now)
	u.sentRec(rec(4), Unconfirmed, [16]byte{}, now+int64(unreadAge))
	got = nil
	u.lost(now+int64(unreadAge)+1, collect)
	if want := []string{"cast-0004"}; !slices.Equal(got, want) {
		t.Fatalf("by age: lost %q, want %q", got, want)
	}

	// Not while the pipe was full since: the server may be reading nothing.
	u.sentRec(rec(5), Unconfirmed, [16]byte{}, now)
	u.blocked(now + int64(unreadAge)/2)
	got = nil
	u.lost(now+int64(unreadAge)+1, collect)
	if want := []string{"cast-0005"}; !slices.Equal(got, want) {
		t.Fatalf("blocked: lost %q, want %q", got, want)
	}
}

// A long stream keeps the ring's memory near what may be unread: evicted
// records are compacted away.
func TestUnconfirmedMemoryStaysBounded(t *testing.T) {
	u := newUnconfirmed(Options{HWM: 1, KernelBuffer: 1 << 10})
	now := time.Now().UnixNano()
	rec := make([]byte, 1000)
	for range 100_000 {
		u.sentRec(rec, Unconfirmed, [16]byte{}, now)
	}
	if limit := 2 * (u.atRisk + maxBatch); int64(cap(u.buf)) > limit {
		t.Errorf("ring holds %d bytes after 100 MB sent, want at most %d", cap(u.buf), limit)
	}
	n := 0
	u.lost(now, func([]byte) { n++ })
	if max := int(u.atRisk/1000) + 1; n == 0 || n > max {
		t.Errorf("%d records reported lost, want 1..%d", n, max)
	}
}

func track(keep bool) Tracking {
	if keep {
		return Unconfirmed
	}
	return Untracked
}

// An answer to a message sent after kept ones confirms them: the server
// read them all. Answers to unknown or older messages change nothing.
func TestUnconfirmedAnswerConfirmsWhatWasSentBefore(t *testing.T) {
	u := newUnconfirmed(Options{HWM: 32, KernelBuffer: 256 << 10})
	now := time.Now().UnixNano()
	call := func(i byte) [16]byte { return [16]byte{i} }
	u.sentRec([]byte("call-0"), Answered, call(0), now) // nothing kept yet: not marked
	if u.tracking() {
		t.Fatal("a call with nothing kept before it is marked")
	}
	u.sentRec([]byte("cast-1"), Unconfirmed, [16]byte{}, now)
	u.sentRec([]byte("cast-2"), Unconfirmed, [16]byte{}, now)
	u.sentRec([]byte("call-3"), Answered, call(3), now)
	u.sentRec([]byte("cast-4"), Unconfirmed, [16]byte{}, now)
	u.sentRec([]byte("call-5"), Answered, call(5), now)
	u.answered(call(0))
	u.answered(call(9))
	u.answered(call(3))
	var got []string
	u.lost(now, func(r []byte) { got = append(got, string(r)) })
	if want := []string{"cast-4"}; !slices.Equal(got, want) {
		t.Fatalf("after the answer to call-3: lost %q, want %q", got, want)
	}
	if u.tracking() || len(u.marks) != 0 {
		t.Errorf("marks left after the drop: %v", u.marks)
	}
}
