package store_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/relay-dev/relay/actors"
	"github.com/relay-dev/relay/envelope"
	"github.com/relay-dev/relay/internal/testutil"
	"github.com/relay-dev/relay/store"
)

// ledgers runs f on each implementation of actors.Ledger.
func ledgers(t *testing.T, ttl time.Duration, maxBytes int, f func(t *testing.T, l actors.Ledger)) {
	t.Run("memory", func(t *testing.T) { f(t, actors.NewMemoryLedger(ttl, maxBytes)) })
	t.Run("store", func(t *testing.T) {
		s, err := store.Open(t.TempDir(), ttl, maxBytes)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		f(t, s)
	})
}

func TestLedgerStates(t *testing.T) {
	ledgers(t, time.Minute, 0, func(t *testing.T, l actors.Ledger) {
		a, b := envelope.NewMsgID(), envelope.NewMsgID()
		if st, _, _ := l.Begin(a); st != actors.New {
			t.Fatalf("a new id: state %v", st)
		}
		if st, reply, _ := l.Begin(a); st != actors.Running || reply != nil {
			t.Fatalf("a running id: %v %q", st, reply)
		}
		if err := l.Done(a, []byte("r")); err != nil {
			t.Fatal(err)
		}
		if st, reply, ev := l.Begin(a); st != actors.Done || string(reply) != "r" || ev {
			t.Fatalf("a finished call: %v %q evicted=%v", st, reply, ev)
		}
		l.Begin(b)
		l.Forget(b)
		if st, _, _ := l.Begin(b); st != actors.New {
			t.Fatalf("a forgotten running id: state %v, want New", st)
		}
	})
}

// An id is remembered for the TTL, not after.
func TestLedgerTTL(t *testing.T) {
	const ttl = 300 * time.Millisecond
	ledgers(t, ttl, 0, func(t *testing.T, l actors.Ledger) {
		a := envelope.NewMsgID()
		began := time.Now()
		l.Begin(a)
		if err := l.Done(a, nil); err != nil {
			t.Fatal(err)
		}
		if st, _, _ := l.Begin(a); st != actors.Done && time.Since(began) < ttl {
			t.Fatalf("an id was forgotten %v after it arrived, within its TTL %v", time.Since(began), ttl)
		}
		testutil.WaitFor(t, 30*time.Second, func() error {
			if st, _, _ := l.Begin(a); st != actors.New {
				return fmt.Errorf("id still remembered %v after it arrived (TTL %v)", time.Since(began), ttl)
			}
			return nil
		})
		if d := time.Since(began); d < ttl {
			t.Errorf("an id was forgotten after %v, before its TTL %v", d, ttl)
		}
	})
}

// Answers are kept up to the byte bound: beyond it the oldest go, their
// ids stay (a resend is known as handled, its answer as evicted).
func TestLedgerByteBound(t *testing.T) {
	ledgers(t, time.Minute, 1000, func(t *testing.T, l actors.Ledger) {
		ids := make([]envelope.MsgID, 5)
		for i := range ids {
			ids[i] = envelope.NewMsgID()
			l.Begin(ids[i])
			if err := l.Done(ids[i], make([]byte, 300)); err != nil {
				t.Fatal(err)
			}
		}
		kept := 0
		for _, id := range ids {
			st, reply, evicted := l.Begin(id)
			if st != actors.Done {
				t.Fatalf("a handled id: state %v", st)
			}
			if reply != nil {
				kept++
			} else if !evicted {
				t.Fatal("an answer is gone but not marked evicted")
			}
		}
		if kept == 0 || kept*300 > 1000 {
			t.Errorf("%d answers of 300 bytes kept under a bound of 1000", kept)
		}
		if b := l.(interface{ Bytes() int }).Bytes(); b > 1000 {
			t.Errorf("%d bytes of answers kept, bound 1000", b)
		}
	})
}

// What the store recorded is there when it is opened again (the next
// process); what was only running is not.
func TestStoreOutlivesTheProcess(t *testing.T) {
	dir := t.TempDir()
	s, err := store.Open(dir, time.Minute, 0)
	if err != nil {
		t.Fatal(err)
	}
	done, running := envelope.NewMsgID(), envelope.NewMsgID()
	s.Begin(done)
	s.Begin(running)
	if err := s.Done(done, []byte("answer")); err != nil {
		t.Fatal(err)
	}
	cast := store.Cast{ID: envelope.NewMsgID(), Deadline: time.Now().Add(time.Minute), Addrs: []string{"tcp://a:1", "tcp://b:2"}, Rec: []byte("rec")}
	old := store.Cast{ID: envelope.NewMsgID(), Deadline: time.Now().Add(-time.Second), Addrs: []string{"tcp://a:1"}, Rec: []byte("old")}
	for _, c := range []store.Cast{cast, old} {
		if err := s.SaveCast(c); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := store.Open(dir, time.Minute, 0); err == nil {
		t.Fatal("a second Open of the same directory succeeded")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = store.Open(dir, time.Minute, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if st, reply, _ := s.Begin(done); st != actors.Done || string(reply) != "answer" {
		t.Errorf("handled before the restart: %v %q", st, reply)
	}
	if st, _, _ := s.Begin(running); st != actors.New {
		t.Errorf("running at the restart: %v, want New (it runs again)", st)
	}
	casts, err := s.Casts(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(casts) != 1 || casts[0].ID != cast.ID || string(casts[0].Rec) != "rec" || len(casts[0].Addrs) != 2 {
		t.Fatalf("casts after the restart: %+v, want only the live one", casts)
	}
	if err := s.DeleteCast(cast.ID); err != nil {
		t.Fatal(err)
	}
	if casts, _ := s.Casts(time.Now()); len(casts) != 0 {
		t.Errorf("a deleted cast came back: %+v", casts)
	}
}
