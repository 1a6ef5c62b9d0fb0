package relay

import (
	"slices"
	"testing"
	"time"
)

// A suspect peer is left out of a list until its time passes or it is
// cleared; a list of suspects only is kept whole.
func TestSuspects(t *testing.T) {
	var s suspects
	addrs := []string{"tcp://a:1", "tcp://b:1", "tcp://c:1"}
	if got := s.filter(addrs); &got[0] != &addrs[0] {
		t.Error("filter with no suspect copied the list")
	}
	now := time.Now()
	s.add("tcp://b:1", now.Add(time.Hour))
	s.add("tcp://c:1", now.Add(-time.Second)) // already past
	if got := s.filter(addrs); !slices.Equal(got, []string{"tcp://a:1", "tcp://c:1"}) {
		t.Errorf("filter = %v, want a and c", got)
	}
	if !s.has("tcp://b:1", now) || s.has("tcp://c:1", now) || s.has("tcp://a:1", now) {
		t.Error("has: want only b suspect")
	}
	if n := s.n.Load(); n != 1 {
		t.Errorf("%d entries after c expired, want 1", n)
	}
	s.add("tcp://a:1", now.Add(time.Hour))
	s.add("tcp://c:1", now.Add(time.Hour))
	if got := s.filter(addrs); !slices.Equal(got, addrs) {
		t.Errorf("filter with every peer suspect = %v, want all of them", got)
	}
	s.clear("tcp://b:1")
	s.clear("tcp://b:1") // twice: no harm
	if !s.down("tcp://a:1") || s.down("tcp://b:1") || s.n.Load() != 2 {
		t.Errorf("after clearing b: a down %v, b down %v, %d entries", s.down("tcp://a:1"), s.down("tcp://b:1"), s.n.Load())
	}
}

// A peer whose connection was lost is avoided at once (away) but is down
// only once the loss lasts lostConfirm; a loss reported again keeps the
// time of the first; a refused peer (add) is down at once.
func TestSuspectsLost(t *testing.T) {
	var s suspects
	now := time.Now()
	s.lose("tcp://a:1", now)
	if !s.away("tcp://a:1") || s.down("tcp://a:1") {
		t.Errorf("just lost: away %v (want true), down %v (want false)", s.away("tcp://a:1"), s.down("tcp://a:1"))
	}
	if got := s.filter([]string{"tcp://a:1", "tcp://b:1"}); !slices.Equal(got, []string{"tcp://b:1"}) {
		t.Errorf("filter = %v, want b only", got)
	}
	s.lose("tcp://a:1", now.Add(-lostConfirm)) // an earlier report does not move the loss back
	s.lose("tcp://b:1", now.Add(-lostConfirm))
	s.lose("tcp://b:1", now) // a later one keeps the first
	if !s.down("tcp://b:1") {
		t.Error("lost for lostConfirm: want down")
	}
	if s.down("tcp://a:1") {
		t.Error("a was lost just now: want not down")
	}
	s.add("tcp://c:1", now.Add(time.Hour))
	if !s.down("tcp://c:1") || !s.away("tcp://c:1") {
		t.Error("refused: want down and away at once")
	}
	s.clear("tcp://b:1")
	if s.away("tcp://b:1") || s.down("tcp://b:1") {
		t.Error("cleared: want neither away nor down")
	}
}
