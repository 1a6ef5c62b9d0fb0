package chaos

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Concurrent appenders share fsyncs; every record is read back whole, each
// key's S before its A.
func TestJournal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	j, err := OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 8, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				key := fmt.Sprintf("call/%d/%d", w, i)
				if err := j.Append(recStarted, key, "0123"); err != nil {
					t.Error(err)
				}
				if err := j.Append(recApplied, key, "0123"); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if err := j.Append(recStarted, "bad key", "x"); err == nil {
		t.Errorf("a key with a space was journaled")
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	recs, err := readJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2*writers*each {
		t.Fatalf("read %d records, want %d", len(recs), 2*writers*each)
	}
	started := map[string]bool{}
	for _, r := range recs {
		switch r.kind {
		case recStarted:
			started[r.key] = true
		case recApplied:
			if !started[r.key] {
				t.Errorf("%s applied before it started", r.key)
			}
		}
	}
	if none, err := readJournal(filepath.Join(t.TempDir(), "missing")); err != nil || len(none) != 0 {
		t.Errorf("a missing journal: %v, %v; want none, nil", none, err)
	}
}

// A key run twice was handled twice; at a crash only if every earlier run
// was cut short by its process's death: during the handler, or within
// recordGap after it.
func TestHandled(t *testing.T) {
	for _, c := range []struct {
		name                    string
		runs                    []run
		applied, twice, atCrash bool
	}{
		{"never", nil, false, false, false},
		{"once", []run{{applied: true}}, true, false, false},
		{"started, killed", []run{{killed: true}}, false, false, false},
		{"cut short, then again", []run{{inc: 1, killed: true}, {inc: 2, applied: true}}, true, true, true},
		{"applied, then again", []run{{inc: 1, killed: true, applied: true}, {inc: 2, applied: true}}, true, true, false},
		{"applied, killed before it was recorded, then again", []run{{inc: 1, killed: true, applied: true, appliedAt: time.Unix(10, 0), endedAt: time.Unix(10, 0).Add(recordGap)}, {inc: 2, applied: true}}, true, true, true},
		{"applied, killed well after, then again", []run{{inc: 1, killed: true, applied: true, appliedAt: time.Unix(10, 0), endedAt: time.Unix(11, 0)}, {inc: 2, applied: true}}, true, true, false},
		{"twice in one life", []run{{applied: true}, {applied: true}}, true, true, false},
	} {
		applied, twice, atCrash := handled(c.runs)
		if applied != c.applied || twice != c.twice || atCrash != c.atCrash {
			t.Errorf("%s: applied, twice, at a crash = %v, %v, %v; want %v, %v, %v", c.name, applied, twice, atCrash, c.applied, c.twice, c.atCrash)
		}
	}
}

// A call that failed over ran first on a server killed during it, then on
// another: read server by server, the runs come in the wrong order, and
// the double run is at the crash only once they are in start order.
func TestRunsInStartOrderAcrossServers(t *testing.T) {
	t0 := time.Unix(100, 0)
	rs := []run{
		{server: "srv1", inc: 1, applied: true, startedAt: t0.Add(100 * time.Millisecond), appliedAt: t0.Add(110 * time.Millisecond)},
		{server: "srv2", inc: 1, killed: true, startedAt: t0, endedAt: t0.Add(50 * time.Millisecond)},
	}
	if _, twice, atCrash := handled(rs); !twice || atCrash {
		t.Fatalf("in reading order: twice %v, at crash %v; the test is void unless the order matters", twice, atCrash)
	}
	inStartOrder(rs)
	if _, twice, atCrash := handled(rs); !twice || !atCrash {
		t.Errorf("in start order: twice %v, at crash %v, want a double run at the crash", twice, atCrash)
	}
}
