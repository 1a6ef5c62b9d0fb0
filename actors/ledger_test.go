package actors

import (
	"testing"
	"time"

	"github.com/relay-dev/relay/envelope"
)

// What store/ledger_test.go's conformance suite runs over both ledgers
// (states, TTL, the byte bound across answers) is not repeated here; these
// are the MemoryLedger's own (its TTL and count bound are recent's, in
// recent_test.go).

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
