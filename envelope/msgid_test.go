package envelope

import (
	"math/bits"
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

// TestNewMsgIDUnpredictable checks that ids are not a visible counter:
// consecutive ids differ in about half their bits, and no byte position
// stays the same across them.
func TestNewMsgIDUnpredictable(t *testing.T) {
	const n = 1000
	prev := NewMsgID()
	same := [16]int{}
	totalBits := 0
	for range n {
		id := NewMsgID()
		for i := range id {
			totalBits += bits.OnesCount8(id[i] ^ prev[i])
			if id[i] == prev[i] {
				same[i]++
			}
		}
		prev = id
	}
	if avg := float64(totalBits) / n; avg < 54 || avg > 74 {
		t.Fatalf("consecutive ids differ in %.1f bits on average, want about 64", avg)
	}
	for i, c := range same {
		if c > n/20 {
			t.Fatalf("byte %d equal in %d of %d consecutive ids: a visible counter or prefix", i, c, n)
		}
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
