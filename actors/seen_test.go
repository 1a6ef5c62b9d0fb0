package actors

import (
	"testing"
	"time"

	"github.com/relay-dev/relay/envelope"
)

func TestSeen(t *testing.T) {
	s := NewSeen(time.Minute)
	a, b := envelope.NewMsgID(), envelope.NewMsgID()
	if first, _ := s.Begin(a); !first {
		t.Fatal("a new id was not first")
	}
	if first, reply := s.Begin(a); first || reply != nil {
		t.Fatalf("a running id: first=%v reply=%v", first, reply)
	}
	s.Done(a, []byte("r"))
	if first, reply := s.Begin(a); first || string(reply) != "r" {
		t.Fatalf("a finished id: first=%v reply=%v", first, reply)
	}
	if first, _ := s.Begin(b); !first {
		t.Fatal("another id was not first")
	}

	// Expired ids are forgotten: remembered for the TTL, not after.
	const ttl = 100 * time.Millisecond
	short := NewSeen(ttl)
	began := time.Now()
	short.Begin(a)
	if first, _ := short.Begin(a); first && time.Since(began) < ttl {
		t.Fatalf("an id was forgotten %v after it arrived, within its TTL %v", time.Since(began), ttl)
	}
	// Poll (the package cannot import internal/testutil, which imports it).
	for first, _ := short.Begin(a); !first; first, _ = short.Begin(a) {
		if time.Since(began) > 10*time.Second {
			t.Fatalf("an id still remembered %v after it arrived (TTL %v)", time.Since(began), ttl)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if d := time.Since(began); d < ttl {
		t.Errorf("an id was forgotten after %v, before its TTL %v", d, ttl)
	}
}
