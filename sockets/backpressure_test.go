package sockets

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// A peer's queue holds at most its bound, queued and held by the loop
// together: towards an endpoint nobody listens at (IMMEDIATE: nothing is
// handed to libzmq) the loop holds what it took, a further TryPush is
// ErrBackPressure and Push waits for room until its ctx ends. Once a
// router binds there, what was held is delivered in order and a waiting
// Push gets its room.
func TestLoopsPeerBackPressure(t *testing.T) {
	eachReconnecting(t, func(t *testing.T, tr transport) {
		zctx := newTestContext(t)
		b, ep := tr.listen(t)
		const max = 8
		peers := NewPeers(max, 0)
		startDealers(t, zctx, peers, DealersConfig{})
		for i := range max {
			if _, err := peers.TryPush(ep, Message{Rec: seq(i)}); err != nil {
				t.Fatalf("push %d of %d: %v", i, max, err)
			}
		}
		p := peers.Get(ep)
		waitFor(t, 10*time.Second, func() error {
			if h := p.held.Load(); h != max {
				return fmt.Errorf("the loop holds %d, want %d", h, max)
			}
			return nil
		})
		if _, err := peers.TryPush(ep, Message{Rec: seq(max)}); !errors.Is(err, ErrBackPressure) {
			t.Fatalf("push beyond the bound: %v, want ErrBackPressure", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		_, err := peers.Push(ctx, ep, Message{Rec: seq(max)})
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Push on a full queue: %v, want its ctx's deadline", err)
		}
		if n := peers.Unsent(); n != max {
			t.Errorf("Unsent = %d, want %d", n, max)
		}

		waited := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := peers.Push(ctx, ep, Message{Rec: seq(max)})
			waited <- err
		}()
		var srv sink
		startRouter(t, zctx, b, NewOutbox(10), RouterConfig{OnRecv: srv.router})
		if err := <-waited; err != nil {
			t.Fatalf("Push waiting for room: %v", err)
		}
		srv.waitBytes(t, 8*(max+1))
		if !bytes.Equal(srv.payload, seqs(0, max+1)) {
			t.Fatalf("the held records arrived as %x", srv.payload)
		}
		waitFor(t, 10*time.Second, func() error {
			if n := peers.Unsent(); n != 0 {
				return fmt.Errorf("Unsent = %d after delivery", n)
			}
			return nil
		})
	})
}

// A held message whose deadline passes is handed to OnDrop with
// ErrExpired, and frees its room in the queue.
func TestLoopsDealersExpiry(t *testing.T) {
	eachReconnecting(t, func(t *testing.T, tr transport) {
		zctx := newTestContext(t)
		_, ep := tr.listen(t) // never bound
		var d drops
		peers := NewPeers(4, 0)
		startDealers(t, zctx, peers, DealersConfig{OnDrop: d.dealers})
		dl := time.Now().Add(50 * time.Millisecond).UnixNano()
		for i := range 4 {
			if _, err := peers.TryPush(ep, Message{Rec: seq(i), Deadline: dl}); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, 10*time.Second, func() error {
			if n := d.count(ErrExpired); n != 4 {
				return fmt.Errorf("%d dropped with ErrExpired (%d drops), want 4", n, d.total())
			}
			return nil
		})
		if d.total() != 4 {
			t.Errorf("%d drops, want 4", d.total())
		}
		if dl := time.Unix(0, dl); time.Now().Before(dl) {
			t.Errorf("dropped before the deadline")
		}
		waitFor(t, 10*time.Second, func() error {
			if n := peers.Unsent(); n != 0 {
				return fmt.Errorf("Unsent = %d after the drops", n)
			}
			return nil
		})
		if _, err := peers.TryPush(ep, Message{Rec: seq(5)}); err != nil {
			t.Errorf("push after the drops: %v", err)
		}
	})
}

// A reply to a routing id that is not connected is held until its deadline
// (or, without one, a grace period) and then handed to OnDrop with
// ErrUnreachable; beyond BacklogMax held replies, one is dropped at once
// with ErrBackPressure.
func TestLoopsRouterUnreachable(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		zctx := newTestContext(t)
		b, _ := tr.listen(t)
		var d drops
		out := NewOutbox(10)
		startRouter(t, zctx, b, out, RouterConfig{BacklogMax: 2, OnDrop: d.add})
		soon := time.Now().Add(50 * time.Millisecond).UnixNano()
		start := time.Now()
		for _, m := range []Message{
			{To: []byte("nobody"), Rec: seq(1), Deadline: soon},
			{To: []byte("nobody"), Rec: seq(2)}, // no deadline: the grace period
			{To: []byte("nobody"), Rec: seq(3), Deadline: soon},
		} {
			if err := out.TryPush(m); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, 10*time.Second, func() error {
			if n, m := d.count(ErrBackPressure), d.count(ErrUnreachable); n != 1 || m != 2 {
				return fmt.Errorf("%d dropped for back-pressure and %d as unreachable, want 1 and 2", n, m)
			}
			return nil
		})
		if since := time.Since(start); since < unreachableGrace {
			t.Errorf("a reply without a deadline dropped after %v, before the grace period %v", since, unreachableGrace)
		}
		if d.total() != 3 {
			t.Errorf("%d drops, want 3", d.total())
		}
	})
}

// A Router whose OnRecv asks to pause stops reading: what comes next stays
// in libzmq until its high-water marks fill, and then the sender's peer
// queue, so that TryPush says ErrBackPressure. Resume delivers everything
// that was accepted.
func TestLoopsRouterPause(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		zctx := newTestContext(t)
		b, ep := tr.listen(t)
		o := DefaultOptions()
		o.HWM = 2
		srv := sink{pause: func(n int) bool { return n == 1 }}
		r := startRouter(t, zctx, b, NewOutbox(10), RouterConfig{Options: o, OnRecv: srv.router})
		peers := NewPeers(4, 0)
		startDealers(t, zctx, peers, DealersConfig{Options: o})
		if _, err := peers.TryPush(ep, Message{Rec: seq(0)}); err != nil {
			t.Fatal(err)
		}
		srv.waitBytes(t, 8) // connected, and paused
		accepted := pushUntilFull(t, peers, ep)
		if calls, _, _ := srv.counts(); calls != 1 {
			t.Fatalf("OnRecv called %d times while paused, want 1", calls)
		}
		r.Resume()
		srv.waitBytes(t, 8+accepted*len(bigRec))
	})
}

// Dealers whose OnRecv asks to pause stop reading that DEALER: the
// router's replies fill libzmq's queues, then its backlog, which drops the
// next with ErrBackPressure. Resume delivers every reply not dropped.
func TestLoopsDealersPause(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		zctx := newTestContext(t)
		b, ep := tr.listen(t)
		o := DefaultOptions()
		o.HWM = 2
		var srv sink
		var d drops
		out := NewOutbox(10)
		startRouter(t, zctx, b, out, RouterConfig{Options: o, OnRecv: srv.router, BacklogMax: 4, OnDrop: d.add})
		cli := sink{pause: func(n int) bool { return n == 1 }}
		peers := NewPeers(4, 0)
		dl := startDealers(t, zctx, peers, DealersConfig{Options: o, OnRecv: cli.dealers})
		if _, err := peers.TryPush(ep, Message{Rec: seq(0)}); err != nil {
			t.Fatal(err)
		}
		id := srv.firstID(t)
		pushed := 0
		deadline := time.Now().Add(20 * time.Second)
		for d.count(ErrBackPressure) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("no back-pressure after %d replies to a paused dealer", pushed)
			}
			if err := out.Push(context.Background(), Message{To: id, Rec: bigRec}); err != nil {
				t.Fatal(err)
			}
			pushed++
			if out.Len() > 0 {
				waitFor(t, 10*time.Second, func() error { return emptyErr(out.Len()) })
			}
		}
		if calls, _, _ := cli.counts(); calls != 1 {
			t.Fatalf("OnRecv called %d times while paused, want 1", calls)
		}
		dl.Resume()
		// The last reply pushed may be dropped after the loop above saw
		// the first drop (the loop takes a reply off the outbox before it
		// finds the backlog full): count the drops as they come.
		waitFor(t, 10*time.Second, func() error {
			want := (pushed - d.total()) * len(bigRec)
			if _, _, size := cli.counts(); size != want {
				return fmt.Errorf("%d payload bytes received, want %d (%d pushed, %d dropped)", size, want, pushed, d.total())
			}
			return nil
		})
	})
}

// bigRec fills a good part of a batch, so that few messages fill
// libzmq's queues and the kernel's socket buffers.
var bigRec = bytes.Repeat([]byte{'x'}, 60<<10)

// pushUntilFull pushes bigRec towards ep until its queue says
// ErrBackPressure, waiting between tries for the loop to take what was
// queued; it returns how many pushes were accepted.
func pushUntilFull(t *testing.T, peers *Peers, ep string) int {
	t.Helper()
	accepted := 0
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := peers.TryPush(ep, Message{Rec: bigRec})
		switch {
		case err == nil:
			accepted++
		case errors.Is(err, ErrBackPressure):
			// Full for good once the loop holds the whole bound (the
			// socket takes no more); until then it takes what is queued.
			p, full := peers.Get(ep), false
			waitFor(t, 10*time.Second, func() error {
				if p.held.Load() >= int64(peers.max) {
					full = true
					return nil
				}
				_, err := peers.TryPush(ep, Message{Rec: bigRec})
				if err == nil {
					accepted++
				}
				return err
			})
			if full {
				return accepted
			}
		default:
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no back-pressure after %d pushes towards a paused router", accepted)
		}
	}
}

// emptyErr says that n things are left.
func emptyErr(n int) error {
	if n != 0 {
		return fmt.Errorf("%d left", n)
	}
	return nil
}
