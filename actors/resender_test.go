package actors

import (
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/relay-dev/relay/envelope"
	"github.com/relay-dev/relay/supervisor"
)

// The wait before each resend grows by Multiplier from Base, capped at Max
// (also when the product overflows).
func TestRetryAfter(t *testing.T) {
	ms := time.Millisecond
	def := Retry{Base: 100 * ms, Multiplier: 2, Max: time.Second} // the node's default
	cases := []struct {
		r       Retry
		attempt int
		want    time.Duration
	}{
		{def, 0, 100 * ms},
		{def, 1, 200 * ms},
		{def, 3, 800 * ms},
		{def, 4, time.Second}, // 1.6 s, capped
		{def, 60, time.Second},
		{def, 5000, time.Second}, // +Inf
		{Retry{Base: 100 * ms, Multiplier: 2}, 4, 1600 * ms}, // no cap
		{Retry{Base: 50 * ms, Multiplier: 1, Max: time.Second}, 9, 50 * ms},
	}
	for _, tc := range cases {
		if got := tc.r.After(tc.attempt); got != tc.want {
			t.Errorf("%+v.After(%d) = %v, want %v", tc.r, tc.attempt, got, tc.want)
		}
	}
	if !math.IsInf(math.Pow(2, 5000), 1) {
		t.Fatal("the overflow case does not overflow")
	}
}

// sent is one send or loss the resender made, at the test clock's time.
type sent struct {
	at      time.Duration // since the call was scheduled
	addr    string
	attempt int // the header's attempt byte (send), or attempts (loss)
	lost    bool
}

// A message with acks is resent on the Retry schedule, to its addresses in
// turn, with its attempt byte counting, until it is answered, its attempts
// are spent, or its deadline comes: then a cast is lost (reported, its call
// failed with ErrNoAck), a call left to its caller's deadline.
func TestResenderSchedule(t *testing.T) {
	ms := time.Millisecond
	def := Retry{Base: 100 * ms, Multiplier: 2, Max: time.Second}
	limited := def
	limited.Attempts = 2
	cases := []struct {
		name     string
		retry    Retry
		cast     bool
		deadline time.Duration
		answerAt time.Duration // > 0: the answer comes then
		want     []sent
	}{
		{name: "cast until its deadline", retry: def, cast: true, deadline: 3 * time.Second, want: []sent{
			{100 * ms, "b", 1, false}, {300 * ms, "a", 2, false}, {700 * ms, "b", 3, false},
			{1500 * ms, "a", 4, false}, {2500 * ms, "b", 5, false}, // the 1 s cap
			{3 * time.Second, "b", 5, true},
		}},
		{name: "cast with 2 attempts", retry: limited, cast: true, deadline: 3 * time.Second, want: []sent{
			{100 * ms, "b", 1, false}, {300 * ms, "a", 2, false}, {3 * time.Second, "a", 2, true},
		}},
		{name: "call until its deadline", retry: def, deadline: 800 * ms, want: []sent{
			{100 * ms, "b", 1, false}, {300 * ms, "a", 2, false}, {700 * ms, "b", 3, false},
		}},
		{name: "cast answered", retry: def, cast: true, deadline: 3 * time.Second, answerAt: 400 * ms, want: []sent{
			{100 * ms, "b", 1, false}, {300 * ms, "a", 2, false},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			t0 := clk.now()
			var got []sent
			p := NewPending()
			var counters Counters
			r := NewResender(p, tc.retry,
				func(addr string, rec []byte, deadline int64) error {
					got = append(got, sent{at: clk.now().Sub(t0), addr: addr, attempt: int(rec[3])})
					if deadline != t0.Add(tc.deadline).UnixNano() {
						t.Errorf("resent with deadline %d", deadline)
					}
					return nil
				},
				func(addr string, rec []byte, attempts int, err error) {
					if err != ErrNoAck {
						t.Errorf("lost with %v", err)
					}
					got = append(got, sent{at: clk.now().Sub(t0), addr: addr, attempt: attempts, lost: true})
				}, &counters, discard)
			r.now = clk.now
			c := p.Get(t0.Add(tc.deadline))
			c.Rec = record(envelope.KindCast, c.ID, nil)
			c.Addr = "a"
			var outcome []Result
			c.OnFinish(func(res Result) { outcome = append(outcome, res) })
			r.Resent(c, []string{"a", "b"}, tc.cast)
			p.Add(c)
			r.Schedule(c)
			for r.Len() > 0 && clk.now().Sub(t0) < time.Minute {
				next := r.h[0].resend.due
				if tc.answerAt > 0 && !next.Before(t0.Add(tc.answerAt)) {
					p.Finish(c.ID, Result{Kind: envelope.KindAck})
					tc.answerAt = 0
				}
				clk.t = next
				r.run(next)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("resends and losses\n got %v\nwant %v", got, tc.want)
			}
			if n := counters.Resends.Load(); int(n) != resends(tc.want) {
				t.Errorf("Resends counted %d", n)
			}
			lost := len(tc.want) > 0 && tc.want[len(tc.want)-1].lost
			if lost && (len(outcome) != 1 || outcome[0].Err != ErrNoAck) {
				t.Errorf("a lost cast's outcome: %+v, want ErrNoAck", outcome)
			}
			if !lost && tc.answerAt == 0 && !tc.cast && p.Len() != 1 {
				t.Errorf("a call past its deadline left the table (its caller ends it)")
			}
		})
	}
}

func resends(s []sent) int {
	n := 0
	for _, x := range s {
		if !x.lost {
			n++
		}
	}
	return n
}

// The resender's actor runs the resends on its timer; when it stops (the
// node closes) every call still pending fails with ErrClosed.
func TestResenderActor(t *testing.T) {
	sys := supervisor.NewSystem(discard)
	defer sys.Shutdown()
	p := NewPending()
	resent := make(chan int, 16)
	r := NewResender(p, Retry{Base: 5 * time.Millisecond, Multiplier: 1, Max: time.Second},
		func(_ string, rec []byte, _ int64) error {
			select {
			case resent <- int(rec[3]):
			default: // the test has seen enough
			}
			return nil
		},
		func(string, []byte, int, error) {}, &Counters{}, discard)
	pid := sys.Root.Spawn(ResenderProps(ResenderConfig{Resender: r, Pending: p, ErrClosed: errClosed}))

	c := p.Get(time.Now().Add(time.Minute))
	c.Rec = record(envelope.KindCall, c.ID, nil)
	r.Resent(c, []string{"a"}, false)
	p.Add(c)
	r.Schedule(c)
	for want := 1; want <= 3; want++ {
		select {
		case got := <-resent:
			if got != want {
				t.Fatalf("resend with attempt %d, want %d", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("resend %d did not come", want)
		}
	}
	plain := p.Get(time.Now().Add(time.Minute))
	p.Add(plain)
	if err := sys.Root.StopFuture(pid).Wait(); err != nil {
		t.Fatal(err)
	}
	for _, call := range []*Call{c, plain} {
		select {
		case res := <-call.Done():
			if !errors.Is(res.Err, errClosed) {
				t.Errorf("outcome at stop: %+v", res)
			}
		default:
			t.Error("a pending call was not failed when the resender stopped")
		}
	}
	r.mu.Lock()
	armed := r.timer != nil || r.kick != nil
	r.mu.Unlock()
	if armed {
		t.Error("the resender's timer is still armed after its actor stopped")
	}
}

var errClosed = errors.New("test: closed")

// A call resent with failover stays with its server while that server's
// connection is lost for a moment (its resends wait: they would be held,
// then sent after the reconnection), and moves on only once the server is
// down; it moves to a server whose connection is up.
func TestResenderFailover(t *testing.T) {
	ms := time.Millisecond
	retry := Retry{Base: 100 * ms, Multiplier: 2, Max: time.Second}
	type span struct{ from, until time.Duration }
	in := func(at time.Duration, s span) bool { return at >= s.from && at < s.until }
	cases := []struct {
		name       string
		away, down map[string]span
		want       []sent
	}{
		{name: "server up", want: []sent{{100 * ms, "a", 1, false}, {300 * ms, "a", 2, false}, {700 * ms, "a", 3, false}}},
		{name: "socket restart: a away 50-250ms, never down",
			away: map[string]span{"a": {50 * ms, 250 * ms}},
			want: []sent{{250 * ms, "a", 1, false}, {450 * ms, "a", 2, false}}},
		{name: "server gone: a away from 50ms, down from 350ms",
			away: map[string]span{"a": {50 * ms, time.Hour}}, down: map[string]span{"a": {350 * ms, time.Hour}},
			want: []sent{{350 * ms, "b", 1, false}, {550 * ms, "b", 2, false}}},
		{name: "next server away: the one after it",
			away: map[string]span{"a": {50 * ms, time.Hour}, "b": {0, time.Hour}}, down: map[string]span{"a": {50 * ms, time.Hour}},
			want: []sent{{100 * ms, "c", 1, false}, {300 * ms, "c", 2, false}, {700 * ms, "c", 3, false}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			t0 := clk.now()
			var got []sent
			p := NewPending()
			var counters Counters
			r := NewResender(p, retry, func(addr string, rec []byte, _ int64) error {
				got = append(got, sent{at: clk.now().Sub(t0), addr: addr, attempt: int(rec[3])})
				return nil
			}, func(string, []byte, int, error) {}, &counters, discard)
			r.now = clk.now
			r.Away = func(addr string) bool { return in(clk.now().Sub(t0), tc.away[addr]) }
			r.Down = func(addr string) bool { return in(clk.now().Sub(t0), tc.down[addr]) }
			c := p.Get(t0.Add(800 * ms))
			c.Rec = record(envelope.KindCall, c.ID, nil)
			c.Addr = "a"
			r.ResentFailover(c, []string{"a", "b", "c"})
			p.Add(c)
			r.Schedule(c)
			for r.Len() > 0 && clk.now().Sub(t0) < time.Second {
				next := r.h[0].resend.due
				if !next.Before(t0.Add(800 * ms)) {
					break
				}
				clk.t = next
				r.run(next)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("resends\n got %v\nwant %v", got, tc.want)
			}
		})
	}
}
