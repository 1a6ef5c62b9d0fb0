package actors

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/relay-dev/relay/envelope"
	"github.com/relay-dev/relay/sockets"
)

// request returns a request record of kind k with acks asked for, and a
// reply_to.
func request(k envelope.Kind, id envelope.MsgID, replyTo string) []byte {
	h := envelope.Header{Kind: k, ID: id, AckWanted: true, ReplyTo: []byte(replyTo),
		Target: envelope.Target{Topic: "t"}, Method: "m"}
	return h.AppendRecord(nil, nil)
}

// newTestIntake makes an intake whose answers go to queues no loop drains:
// the test reads them with Drain.
func newTestIntake(ledger Ledger) (*Intake, *sockets.Outbox, *sockets.Peers) {
	replies, peers := sockets.NewOutbox(100), sockets.NewPeers(100, 0)
	i := &Intake{Pending: NewPending(), Answers: &Answers{Replies: replies, Peers: peers},
		Ledger: ledger, Counters: &Counters{}, Log: discard}
	i.Init()
	return i, replies, peers
}

// A request with acks is looked up in the ledger: a new one runs; a resend
// of a running cast gets nothing yet, of a running call an ACK ("taken,
// running": its caller slows its resends); a resend of one that ran gets its ACK
// (a cast) or its answer again (a call), the way the resend came: down its
// connection, or back through the router proxy it came through with its
// own reply_to. An answer the ledger could not keep is ReplyUnavailable.
func TestIntakeAckAndDedup(t *testing.T) {
	kept := record(envelope.KindReply, envelope.MsgID{}, []byte("answer"))
	cases := []struct {
		name    string
		kind    envelope.Kind
		state   string // "new", "running", "done", "done-nil" (nothing kept), "evicted"
		via     string // router proxy it came through; "" its connection
		noAck   bool   // AckFilter holds the ACK back
		run     bool
		answer  envelope.Kind // 0: none
		errCode string        // of an ERROR answer
	}{
		{name: "new call", kind: envelope.KindCall, state: "new", run: true},
		{name: "new cast", kind: envelope.KindCast, state: "new", run: true},
		{name: "running call", kind: envelope.KindCall, state: "running", answer: envelope.KindAck},
		{name: "running cast", kind: envelope.KindCast, state: "running"},
		{name: "done cast", kind: envelope.KindCast, state: "done", answer: envelope.KindAck},
		{name: "done cast, ACK held back", kind: envelope.KindCast, state: "done", noAck: true},
		{name: "done cast via proxy", kind: envelope.KindCast, state: "done", via: "tcp://proxy:1", answer: envelope.KindAck},
		{name: "done call", kind: envelope.KindCall, state: "done", answer: envelope.KindReply},
		{name: "done call via proxy", kind: envelope.KindCall, state: "done", via: "tcp://proxy:1", answer: envelope.KindReply},
		{name: "done call, caller gave up", kind: envelope.KindCall, state: "done-nil"},
		{name: "done call, answer evicted", kind: envelope.KindCall, state: "evicted", answer: envelope.KindError, errCode: CodeReplyUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ledger := NewMemoryLedger(time.Minute, 100)
			i, replies, peers := newTestIntake(ledger)
			if tc.noAck {
				i.AckFilter = func(envelope.MsgID) bool { return false }
			}
			id := envelope.NewMsgID()
			switch tc.state {
			case "running":
				ledger.Begin(id)
			case "done", "done-nil", "evicted":
				ledger.Begin(id)
				var reply []byte
				switch tc.state {
				case "done":
					reply = append([]byte(nil), kept...)
				case "evicted":
					reply = make([]byte, 101) // over the bound of 100
				}
				if tc.kind == envelope.KindCast {
					reply = nil
				}
				if err := ledger.Done(id, reply); err != nil {
					t.Fatal(err)
				}
			}
			in := Inbound{Rec: *view(t, request(tc.kind, id, "resend-reply-to")), From: []byte("conn"), Via: tc.via}
			if run := i.ackAndDedup(&in); run != tc.run {
				t.Fatalf("handler runs: %v, want %v", run, tc.run)
			}
			wantDup := uint64(1)
			if tc.state == "new" {
				wantDup = 0
			}
			if d := i.Counters.Duplicates.Load(); d != wantDup {
				t.Errorf("Duplicates = %d, want %d", d, wantDup)
			}
			var sent [][]byte
			replies.Drain(func(m sockets.Message) {
				if string(m.To) != "conn" {
					t.Errorf("answer to routing id %q, want the request's connection", m.To)
				}
				sent = append(sent, m.Rec)
			})
			peers.Drain(func(addr string, m sockets.Message) {
				if addr != tc.via {
					t.Errorf("answer through %q, want %q", addr, tc.via)
				}
				sent = append(sent, m.Rec)
			})
			if tc.answer == 0 {
				if len(sent) != 0 {
					t.Fatalf("%d answers sent, want none", len(sent))
				}
				return
			}
			if len(sent) != 1 {
				t.Fatalf("%d answers sent, want one %v", len(sent), tc.answer)
			}
			v := view(t, sent[0])
			if v.Kind() != tc.answer {
				t.Fatalf("answer of kind %v, want %v", v.Kind(), tc.answer)
			}
			if tc.via != "" && !bytes.Equal(v.ReplyTo(), []byte("resend-reply-to")) {
				t.Errorf("answer through a proxy with reply_to %q, want the resend's", v.ReplyTo())
			}
			if tc.answer == envelope.KindReply && string(v.Body()) != "answer" {
				t.Errorf("the answer again: body %q", v.Body())
			}
			if tc.errCode != "" {
				if code, _, err := envelope.DecodeError(v.Body()); err != nil || code != tc.errCode {
					t.Errorf("error answer %q (%v), want %s", code, err, tc.errCode)
				}
			}
			if tc.answer == envelope.KindAck && i.Counters.AcksSent.Load() != 1 {
				t.Errorf("AcksSent = %d", i.Counters.AcksSent.Load())
			}
		})
	}
}

// Local hands a request of a node of the same process to the pool after
// the checks every request gets: its answers go to the given func, a
// request whose deadline passed or a CALL without reply_to is dropped and
// counted, a full queue refuses with ErrFull.
func TestIntakeLocal(t *testing.T) {
	g := newGate()
	defer close(g.release)
	i, _, _ := newTestIntake(NewMemoryLedger(time.Minute, 0))
	i.Pool = newTestPool(t, g.serve, 1, 2, nil)
	var answers [][]byte
	answer := func(rec []byte) { answers = append(answers, rec) }

	past := envelope.Header{Kind: envelope.KindCall, ID: envelope.NewMsgID(), ReplyTo: []byte("r"),
		Deadline: time.Now().Add(-time.Second).UnixNano()}
	noReply := envelope.Header{Kind: envelope.KindCall, ID: envelope.NewMsgID()}
	reply := envelope.Header{Kind: envelope.KindReply, ID: envelope.NewMsgID()}
	for _, h := range []envelope.Header{past, noReply, reply} {
		if err := i.Local(h.AppendRecord(nil, nil), answer, nil); err != nil {
			t.Fatal(err)
		}
	}
	s := i.Counters.Snapshot()
	if s.ExpiredRequests != 1 || s.Malformed != 1 || s.UnexpectedKind != 1 || i.Pool.Queued() != 0 {
		t.Fatalf("expired %d, malformed %d, unexpected %d, queued %d; want 1, 1, 1, 0",
			s.ExpiredRequests, s.Malformed, s.UnexpectedKind, i.Pool.Queued())
	}

	// A cast with acks that ran before: its ACK goes to answer.
	done := envelope.NewMsgID()
	i.Ledger.Begin(done)
	if err := i.Ledger.Done(done, nil); err != nil {
		t.Fatal(err)
	}
	if err := i.Local(request(envelope.KindCast, done, "r"), answer, nil); err != nil {
		t.Fatal(err)
	}
	if len(answers) != 1 || view(t, answers[0]).Kind() != envelope.KindAck {
		t.Fatalf("answers %x, want one ACK", answers)
	}

	// One runs, two wait: the queue is full.
	for n := range 3 {
		err := i.Local(request(envelope.KindCall, envelope.NewMsgID(), "r"), answer, nil)
		if err != nil {
			t.Fatalf("request %d: %v", n, err)
		}
		if n == 0 {
			g.next(t)
		}
	}
	if err := i.Local(request(envelope.KindCall, envelope.NewMsgID(), "r"), answer, nil); !errors.Is(err, ErrFull) {
		t.Fatalf("a request to a full queue: %v, want ErrFull", err)
	}
	for range 2 {
		g.release <- struct{}{}
		g.next(t)
	}
}
