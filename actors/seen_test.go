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

	// Expired ids are forgotten.
	short := NewSeen(-time.Nanosecond) // every entry is past this TTL at once
	short.Begin(a)
	if first, _ := short.Begin(a); !first {
		t.Error("an id past its TTL was still remembered")
	}
}
