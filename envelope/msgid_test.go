package envelope

import (
	"bytes"
	"encoding/binary"
	"regexp"
	"sync"
	"testing"
)

func TestNewMsgIDUnique(t *testing.T) {
	const goroutines, perGoroutine = 8, 10000
	ids := make([][]MsgID, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := make([]MsgID, perGoroutine)
			for i := range out {
				out[i] = NewMsgID()
			}
			ids[g] = out
		}()
	}
	wg.Wait()

	seen := make(map[MsgID]struct{}, goroutines*perGoroutine)
	for _, out := range ids {
		for _, id := range out {
			if id.IsZero() {
				t.Fatal("NewMsgID returned the zero id")
			}
			if _, dup := seen[id]; dup {
				t.Fatalf("duplicate id %s", id)
			}
			seen[id] = struct{}{}
		}
	}
}

func TestNewMsgIDLayout(t *testing.T) {
	a, b := NewMsgID(), NewMsgID()
	if !bytes.Equal(a[:8], b[:8]) {
		t.Fatalf("process prefix changed: %s then %s", a, b)
	}
	ca, cb := binary.BigEndian.Uint64(a[8:]), binary.BigEndian.Uint64(b[8:])
	if cb <= ca {
		t.Fatalf("counter did not increase: %d then %d", ca, cb)
	}
	if allocs := testing.AllocsPerRun(1000, func() { _ = NewMsgID() }); allocs != 0 {
		t.Fatalf("NewMsgID: %v allocs, want 0", allocs)
	}
}

func TestMsgIDString(t *testing.T) {
	id := MsgID{0: 0xab, 1: 0x01, 15: 0xff}
	if got, want := id.String(), "ab0100000000000000000000000000ff"; got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
	hex32 := regexp.MustCompile(`^[0-9a-f]{32}$`)
	if s := NewMsgID().String(); !hex32.MatchString(s) {
		t.Fatalf("String() = %q, want 32 lowercase hex characters", s)
	}
	if !(MsgID{}).IsZero() || (MsgID{15: 1}).IsZero() {
		t.Fatal("IsZero wrong")
	}
}
