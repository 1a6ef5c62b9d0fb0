package actors

import (
	"testing"
	"time"

	"github.com/relay-dev/relay/envelope"
)

// What store/ledger_test.go's conformance suite runs over both ledgers
// (states, TTL, the byte bound across answers) is not repeated here; these
// are the MemoryLedger's own bounds, on a test clock.

// An id is remembered for exactly its TTL.
func TestMemoryLedgerTTLBoundary(t *testing.T) {
	clk := newClock()
	l := NewMemoryLedger(time.Second, 0)
	l.now = clk.now
	a := envelope.NewMsgID()
	l.Begin(a)
	if err := l.Done(a, []byte("r")); err != nil {
		t.Fatal(err)
	}
	clk.add(time.Second)
	if st, reply, _ := l.Begin(a); st != Done || string(reply) != "r" {
		t.Fatalf("at its TTL: %v %q, want Done", st, reply)
	}
	clk.add(time.Nanosecond)
	if st, _, _ := l.Begin(a); st != New {
		t.Fatalf("past its TTL: %v, want New", st)
	}
	if l.Bytes() != 0 {
		t.Errorf("%d bytes of answers kept after expiry", l.Bytes())
	}
	// Done for an id that expired meanwhile records nothing.
	b := envelope.NewMsgID()
	l.Begin(b)
	clk.add(2 * time.Second)
	l.Begin(envelope.NewMsgID()) // expiry runs in Begin
	if err := l.Done(b, []byte("late")); err != nil {
		t.Fatal(err)
	}
	if l.Bytes() != 0 {
		t.Errorf("Done of an expired id kept %d bytes", l.Bytes())
	}
}

// At most maxIDs ids are remembered, whatever the TTL: the oldest go
// first. Expiry keeps working across the compactions of its order.
func TestMemoryLedgerCountBound(t *testing.T) {
	clk := newClock()
	l := NewMemoryLedger(time.Hour, 0)
	l.now, l.maxIDs = clk.now, 3
	ids := make([]envelope.MsgID, 100)
	for i := range ids {
		ids[i] = envelope.NewMsgID()
		clk.add(time.Millisecond)
		if st, _, _ := l.Begin(ids[i]); st != New {
			t.Fatalf("id %d: %v", i, st)
		}
		if n := len(l.byID); n > 3 {
			t.Fatalf("%d ids remembered after %d, bound 3", n, i+1)
		}
	}
	// The newest are known, older ones forgotten. (Each Begin of a
	// forgotten id remembers it anew, pushing out the oldest: newest first.)
	for _, c := range []struct {
		i    int
		want State
	}{{99, Running}, {98, Running}, {0, New}} {
		if st, _, _ := l.Begin(ids[c.i]); st != c.want {
			t.Errorf("id %d: %v, want %v", c.i, st, c.want)
		}
	}
}

// An answer larger than the whole byte bound is not kept: the id is Done
// with evicted set, and no other answer is pushed out for it.
func TestMemoryLedgerAnswerOverBound(t *testing.T) {
	l := NewMemoryLedger(time.Hour, 100)
	small, big := envelope.NewMsgID(), envelope.NewMsgID()
	l.Begin(small)
	l.Begin(big)
	if err := l.Done(small, make([]byte, 60)); err != nil {
		t.Fatal(err)
	}
	if err := l.Done(big, make([]byte, 101)); err != nil {
		t.Fatal(err)
	}
	if st, reply, evicted := l.Begin(big); st != Done || reply != nil || !evicted {
		t.Errorf("an answer over the bound: %v %d bytes evicted=%v, want Done, none, evicted", st, len(reply), evicted)
	}
	if st, reply, evicted := l.Begin(small); st != Done || len(reply) != 60 || evicted {
		t.Errorf("the answer kept: %v %d bytes evicted=%v", st, len(reply), evicted)
	}
	// Forget leaves a Done id alone.
	l.Forget(small)
	if st, _, _ := l.Begin(small); st != Done {
		t.Errorf("Forget dropped a Done id: %v", st)
	}
}

// Dedup takes each (msg_id, copy) once within its TTL; copies of one
// message (the pools of a notification) are told apart; beyond size ids
// the oldest is forgotten.
func TestDedup(t *testing.T) {
	clk := newClock()
	d := NewDedup(2, time.Second)
	d.now = clk.now
	a, b, c := envelope.NewMsgID(), envelope.NewMsgID(), envelope.NewMsgID()
	steps := []struct {
		id    envelope.MsgID
		copy  string
		after time.Duration
		first bool
	}{
		{a, "s1", 0, true},
		{a, "s1", 0, false},
		{a, "s2", 0, true}, // another copy of a
		{a, "s1", 999 * time.Millisecond, false},
		{a, "s1", time.Millisecond, true}, // its TTL has passed: taken, and remembered anew
		{b, "s1", 0, true},                // the ring holds 2: a/s2 goes
		{a, "s2", 0, true},                // forgotten; a/s1 goes
		{a, "s1", 0, true},                // forgotten; b goes
		{b, "s1", 0, true},                // forgotten; a/s2 goes
		{a, "s1", 0, false},               // still remembered
		{c, "", 0, true},
		{c, "", 0, false},
	}
	for i, s := range steps {
		clk.add(s.after)
		if got := d.First(s.id, s.copy); got != s.first {
			t.Fatalf("step %d: First = %v, want %v", i, got, s.first)
		}
	}
	if len(d.seen) > 2 {
		t.Errorf("%d ids remembered, size 2", len(d.seen))
	}
}
