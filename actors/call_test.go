package actors

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/relay-dev/relay/envelope"
)

// A call added is taken once; Finish delivers its one outcome on Done,
// Fail a local error; a call not (or no longer) in the table is neither.
func TestPendingAddTakeFinish(t *testing.T) {
	p := NewPending()
	c := p.Get(time.Now().Add(time.Minute))
	if c.ID.IsZero() {
		t.Fatal("Get gave no msg_id")
	}
	p.Add(c)
	if p.Len() != 1 {
		t.Fatalf("Len = %d, want 1", p.Len())
	}
	if got := p.Take(c.ID); got != c {
		t.Fatalf("Take = %p, want the call added (%p)", got, c)
	}
	if p.Take(c.ID) != nil || p.Len() != 0 {
		t.Fatal("a call was taken twice")
	}

	p.Add(c)
	if !p.Finish(c.ID, Result{Kind: envelope.KindReply, Body: []byte("b")}) {
		t.Fatal("Finish found no call")
	}
	if r := <-c.Done(); r.Kind != envelope.KindReply || string(r.Body) != "b" {
		t.Fatalf("outcome %+v", r)
	}
	if p.Finish(c.ID, Result{}) || p.Fail(c.ID, errors.New("x")) {
		t.Fatal("a finished call was finished again")
	}

	d := p.GetFor(c.ID, time.Time{})
	if d.ID != c.ID {
		t.Fatal("GetFor ignored the msg_id")
	}
	p.Add(d)
	boom := errors.New("boom")
	if !p.Fail(d.ID, boom) {
		t.Fatal("Fail found no call")
	}
	if r := <-d.Done(); r.Err != boom {
		t.Fatalf("failed call's outcome %+v", r)
	}
}

// Calls spread over the shards by the msg_id's last byte; Len counts them
// all, and concurrent adders and takers each get their own calls once.
func TestPendingShards(t *testing.T) {
	p := NewPending()
	for i := range pendingShards {
		c := p.GetFor(idN(i), time.Time{})
		p.Add(c)
		if n := len(p.shards[i].byID); n != 1 {
			t.Fatalf("shard %d holds %d calls after one with last byte %d", i, n, i)
		}
	}
	if p.Len() != pendingShards {
		t.Fatalf("Len = %d, want %d", p.Len(), pendingShards)
	}
	p.FailAll(errors.New("closing"))
	if p.Len() != 0 {
		t.Fatalf("Len = %d after FailAll", p.Len())
	}

	const workers, each = 8, 500
	var wg sync.WaitGroup
	taken := make([]int, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				c := p.Get(time.Time{})
				p.Add(c)
				if p.Take(c.ID) == c {
					taken[w]++
				}
			}
		}()
	}
	wg.Wait()
	for w, n := range taken {
		if n != each {
			t.Errorf("worker %d took %d of its %d calls", w, n, each)
		}
	}
}

// Put gives a plain call back for reuse (cleared), but never a call whose
// outcome goes to OnFinish or that is resent: someone else still holds it.
func TestPendingPutReuse(t *testing.T) {
	p := NewPending()
	r := NewResender(p, Retry{Base: time.Second, Multiplier: 2, Max: time.Second}, nil, nil, &Counters{}, discard)
	cases := []struct {
		name   string
		setup  func(c *Call)
		pooled bool
	}{
		{"plain call", func(*Call) {}, true},
		{"OnFinish", func(c *Call) { c.OnFinish(func(Result) {}) }, false},
		{"resent", func(c *Call) { r.Resent(c, []string{"a"}, false) }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := p.Get(time.Time{})
			c.Rec, c.Addr = append(c.Rec, "record"...), "tcp://a:1"
			tc.setup(c)
			p.Put(c)
			cleared := len(c.Rec) == 0 && c.Addr == ""
			if cleared != tc.pooled {
				t.Fatalf("after Put: Rec %q Addr %q; want pooled (cleared) %v", c.Rec, c.Addr, tc.pooled)
			}
		})
	}
}

// A call with OnFinish gets its outcome there, not on Done.
func TestPendingOnFinish(t *testing.T) {
	p := NewPending()
	c := p.Get(time.Time{})
	var got []Result
	c.OnFinish(func(r Result) { got = append(got, r) })
	p.Add(c)
	p.Fail(c.ID, ErrNoAck)
	if len(got) != 1 || got[0].Err != ErrNoAck {
		t.Fatalf("OnFinish got %+v", got)
	}
	select {
	case r := <-c.Done():
		t.Fatalf("Done got %+v too", r)
	default:
	}
}

// Answer delivers an answer to its call only from the peer the call went
// to (or a peer it is resent to, or a node of the same process); an ACK
// ends a cast but not a call, and a proxy's NoRoute is not the outcome of a
// message that is resent anyway. What it does not deliver it counts.
func TestPendingAnswer(t *testing.T) {
	noRoute := envelope.EncodeError(CodeNoRoute, "no route")
	other := envelope.EncodeError("Internal", "boom")
	cases := []struct {
		name    string
		resend  string // "", "call" or "cast": the call is resent until answered or acknowledged
		absent  bool   // no call waits
		kind    envelope.Kind
		body    []byte
		from    string
		ends    bool // the call gets its outcome
		stray   uint64
		late    uint64
		acksRcv uint64
	}{
		{name: "reply from its peer", kind: envelope.KindReply, from: "tcp://a:1", ends: true},
		{name: "reply from the same process", kind: envelope.KindReply, from: "", ends: true},
		{name: "reply from another peer", kind: envelope.KindReply, from: "tcp://evil:1", stray: 1},
		{name: "reply from a resend address", resend: "call", kind: envelope.KindReply, from: "tcp://b:1", ends: true},
		{name: "reply for nobody", absent: true, kind: envelope.KindReply, from: "tcp://a:1", late: 1},
		{name: "ack for nobody", absent: true, kind: envelope.KindAck, from: "tcp://a:1", acksRcv: 1},
		{name: "ack of a resent call", resend: "call", kind: envelope.KindAck, from: "tcp://a:1", acksRcv: 1},
		{name: "ack of a resent cast", resend: "cast", kind: envelope.KindAck, from: "tcp://a:1", ends: true, acksRcv: 1},
		{name: "ack of a plain call", kind: envelope.KindAck, from: "tcp://a:1", ends: true, acksRcv: 1},
		{name: "NoRoute of a resent call", resend: "call", kind: envelope.KindError, body: noRoute, from: "tcp://b:1"},
		{name: "NoRoute of a plain call", kind: envelope.KindError, body: noRoute, from: "tcp://a:1", ends: true},
		{name: "other error of a resent call", resend: "call", kind: envelope.KindError, body: other, from: "tcp://a:1", ends: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := NewPending()
			var counters Counters
			c := p.Get(time.Now().Add(time.Minute))
			c.Addr = "tcp://a:1"
			if tc.resend != "" {
				NewResender(p, Retry{}, nil, nil, &counters, discard).Resent(c, []string{"tcp://a:1", "tcp://b:1"}, tc.resend == "cast")
			}
			if !tc.absent {
				p.Add(c)
			}
			p.Answer(view(t, record(tc.kind, c.ID, tc.body)), tc.from, &counters)
			var got *Result
			select {
			case r := <-c.Done():
				got = &r
			default:
			}
			if ends := got != nil; ends != tc.ends {
				t.Fatalf("call ended: %v, want %v", ends, tc.ends)
			}
			if got != nil && (got.Kind != tc.kind || string(got.Body) != string(tc.body)) {
				t.Errorf("outcome %v %x, want %v %x", got.Kind, got.Body, tc.kind, tc.body)
			}
			if still := p.Len() == 1; still != (!tc.ends && !tc.absent) {
				t.Errorf("call still pending: %v", still)
			}
			s := counters.Snapshot()
			if s.StrayReplies != tc.stray || s.LateReplies != tc.late || s.AcksReceived != tc.acksRcv {
				t.Errorf("stray %d late %d acks %d, want %d %d %d", s.StrayReplies, s.LateReplies, s.AcksReceived, tc.stray, tc.late, tc.acksRcv)
			}
		})
	}
}
