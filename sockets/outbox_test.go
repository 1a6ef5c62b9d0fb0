package sockets

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"
)

// An Outbox holds at most its capacity: TryPush beyond it is
// ErrOutboxFull and Push waits until the loop takes what is queued, or
// until its ctx ends. Unsent counts what the loop took until it settles
// the turn; Drain hands out what is queued, in order.
func TestOutboxBound(t *testing.T) {
	o := NewOutbox(2)
	for i := range 2 {
		if err := o.TryPush(Message{Rec: seq(i)}); err != nil {
			t.Fatalf("push %d: %v", i, err)
		}
	}
	if err := o.TryPush(Message{Rec: seq(2)}); !errors.Is(err, ErrOutboxFull) {
		t.Fatalf("TryPush on a full outbox: %v, want ErrOutboxFull", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	err := o.Push(ctx, Message{Rec: seq(2)})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Push on a full outbox: %v, want its ctx's deadline", err)
	}

	waited := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		waited <- o.Push(ctx, Message{Rec: seq(2)})
	}()
	taken := o.take(nil) // what a loop's turn does
	if len(taken) != 2 || !bytes.Equal(taken[0].Rec, seq(0)) || !bytes.Equal(taken[1].Rec, seq(1)) {
		t.Fatalf("take got %d messages, want the 2 queued in order", len(taken))
	}
	if err := <-waited; err != nil {
		t.Fatalf("Push waiting for room: %v", err)
	}
	if n := o.Unsent(); n != 3 {
		t.Errorf("Unsent = %d, want the 2 taken and the 1 queued", n)
	}
	o.settle()
	o.requeue(taken[1:]) // a stopping loop gives back what it held
	var got []byte
	o.Drain(func(m Message) { got = append(got, m.Rec...) })
	if want := append(seq(1), seq(2)...); !bytes.Equal(got, want) {
		t.Fatalf("Drain got %x, want the requeued message first, then the queued one: %x", got, want)
	}
	if n := o.Unsent(); n != 0 {
		t.Errorf("Unsent = %d after Drain, want 0", n)
	}
}

// A Router drains its Outbox as pushes come, waking from its sleep on
// each, over tcp, ipc and inproc: replies pushed one at a time while the
// loop sleeps arrive, in order, and a Push that waited for room gets it
// once the loop took the queue.
func TestLoopsOutboxWakesRouter(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		zctx := newTestContext(t)
		b, ep := tr.listen(t)
		var srv, cli sink
		out := NewOutbox(1)
		startRouter(t, zctx, b, out, RouterConfig{OnRecv: srv.router})
		peers := NewPeers(10, 0)
		startDealers(t, zctx, peers, DealersConfig{OnRecv: cli.dealers})
		if _, err := peers.TryPush(ep, Message{Rec: seq(0)}); err != nil {
			t.Fatal(err)
		}
		id := srv.firstID(t)
		const n = 50
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for i := range n {
			// With room for one, each Push waits for the loop to take
			// the one before.
			if err := out.Push(ctx, Message{To: id, Rec: seq(i)}); err != nil {
				t.Fatalf("reply %d: %v", i, err)
			}
		}
		cli.waitBytes(t, 8*n)
		cli.mu.Lock()
		got := bytes.Clone(cli.payload)
		cli.mu.Unlock()
		if !bytes.Equal(got, seqs(0, n)) {
			t.Fatal("the replies are not those pushed, in order")
		}
		waitFor(t, 10*time.Second, func() error { return emptyErr(out.Unsent()) })
	})
}
