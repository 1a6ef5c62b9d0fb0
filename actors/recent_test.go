package actors

import (
	"fmt"
	"testing"
	"time"

	"github.com/relay-dev/relay/envelope"
)

// The bounded TTL set, step by step on a clock of its own: a key is
// remembered for the TTL and not after, at most max keys are, the oldest
// going first, and each one forgotten is reported once.
func TestRecent(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	type step struct {
		at     int    // ms after t0
		add    string // key to add (after expire), "" for none
		remove string
		want   string // keys remembered after the step, in order of addition
		gone   string // keys reported forgotten by this step's expire
	}
	for _, tc := range []struct {
		name     string
		ttl, max int
		steps    []step
	}{
		{"ttl", 100, 10, []step{
			{at: 0, add: "a", want: "a"},
			{at: 50, add: "b", want: "ab"},
			{at: 100, want: "ab"},           // a is exactly ttl old: kept
			{at: 101, want: "b", gone: "a"}, // older than ttl: forgotten
			{at: 151, add: "c", want: "c", gone: "b"},
			{at: 400, want: "", gone: "c"},
		}},
		{"max", 1000, 2, []step{
			{at: 0, add: "a", want: "a"},
			{at: 1, add: "b", want: "ab"},
			{at: 2, add: "c", want: "bc", gone: "a"}, // room for one more: the oldest goes
			{at: 3, add: "d", want: "cd", gone: "b"},
		}},
		{"removed early", 100, 10, []step{
			{at: 0, add: "a", want: "a"},
			{at: 10, remove: "a", want: ""},
			{at: 200, want: ""}, // its arrival expires without a report
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRecent[string, string](time.Duration(tc.ttl)*time.Millisecond, tc.max)
			var added []string
			for i, s := range tc.steps {
				gone := ""
				r.expire(at(s.at), func(v string) { gone += v })
				if s.add != "" {
					r.add(s.add, s.add, at(s.at))
					added = append(added, s.add)
				}
				if s.remove != "" {
					r.remove(s.remove)
				}
				have := ""
				for _, k := range added {
					if v, ok := r.get(k); ok {
						have += v
					}
				}
				if have != s.want || gone != s.gone || r.len() != len(s.want) {
					t.Fatalf("step %d (at %dms): remembered %q (len %d), forgot %q; want %q, forgot %q",
						i, s.at, have, r.len(), gone, s.want, s.gone)
				}
			}
		})
	}
}

// The arrivals list is compacted as keys expire: it does not grow with
// every key ever added.
func TestRecentCompacts(t *testing.T) {
	r := newRecent[int, struct{}](time.Millisecond, 1<<20)
	t0 := time.Unix(0, 0)
	for i := 0; i < 10000; i++ {
		now := t0.Add(time.Duration(i) * time.Millisecond)
		r.expire(now, nil)
		r.add(i, struct{}{}, now)
	}
	if r.len() > 2 || cap(r.order) > 64 {
		t.Fatalf("after 10000 keys each outliving the ttl: %d remembered, %d arrivals kept (cap %d)", r.len(), len(r.order)-r.head, cap(r.order))
	}
}

// Dedup: a copy of a message is first once; another copy of the same
// msg_id (another pool) is first too; beyond its size the oldest id is
// forgotten.
func TestDedup(t *testing.T) {
	d := NewDedup(2, time.Minute)
	a, b, c := envelope.NewMsgID(), envelope.NewMsgID(), envelope.NewMsgID()
	for i, s := range []struct {
		id   envelope.MsgID
		copy string
		want bool
	}{
		{a, "p1", true}, {a, "p1", false}, {a, "p2", true}, {a, "p2", false},
		{b, "", true}, // a/p1 forgotten: size 2
		{a, "p1", true}, {c, "", true}, {c, "", false},
	} {
		if got := d.First(s.id, s.copy); got != s.want {
			t.Fatalf("%d: First(%s, %q) = %v, want %v", i, fmt.Sprint(s.id)[:8], s.copy, got, s.want)
		}
	}
}
