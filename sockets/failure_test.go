package sockets

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"
)

// poison is the record whose arrival makes a test's OnRecv panic: the
// failure of a loop, as a bug in a callback or a socket error would end it.
var poison = []byte("poison!!")

// panicOn returns an OnRecv for a router that panics when a batch carries
// poison, and otherwise hands the batch to s.
func (s *sink) panicOn() func(Batch) bool {
	return func(b Batch) bool {
		c := b
		var fs [][]byte
		for {
			var ok bool
			if fs, ok = c.Next(fs); !ok {
				break
			}
			if bytes.Contains(fs[len(fs)-1], poison) {
				panic("test: poisoned batch")
			}
		}
		return s.router(b)
	}
}

// failed collects a loop's OnFail.
func failed() (chan error, func(error)) {
	ch := make(chan error, 1)
	return ch, func(err error) { ch <- err }
}

func waitFailed(t *testing.T, ch chan error, done <-chan struct{}) {
	t.Helper()
	select {
	case err := <-ch:
		if err == nil || !strings.Contains(err.Error(), "panicked") {
			t.Fatalf("OnFail got %v, want the loop's panic", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the loop did not report its failure")
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the failed loop's goroutine did not end")
	}
}

// A Router that fails reports it once through OnFail and ends, closing its
// socket; replies still in its outbox wait there, and a new Router on the
// same bind (what the owning actor starts) takes the same endpoint, so the
// client reconnects and gets them.
func TestLoopsRouterFailure(t *testing.T) {
	eachReconnecting(t, func(t *testing.T, tr transport) {
		zctx := newTestContext(t)
		b, ep := tr.listen(t)
		var srv, cli sink
		out := NewOutbox(10)
		fails, onFail := failed()
		r := startRouter(t, zctx, b, out, RouterConfig{OnRecv: srv.panicOn(), OnFail: onFail})
		peers := NewPeers(10, 0)
		startDealers(t, zctx, peers, DealersConfig{OnRecv: cli.dealers})
		if _, err := peers.TryPush(ep, Message{Rec: seq(1)}); err != nil {
			t.Fatal(err)
		}
		srv.waitBytes(t, 8)
		if _, err := peers.TryPush(ep, Message{Rec: poison}); err != nil {
			t.Fatal(err)
		}
		waitFailed(t, fails, r.Done())
		r.Stop() // what the owner does when it restarts the loop

		// Queued while no loop runs, to a routing id that is gone: the next
		// loop takes it, holds it, and drops it at its deadline.
		if err := out.TryPush(Message{To: []byte("gone"), Rec: seq(7), Deadline: time.Now().Add(50 * time.Millisecond).UnixNano()}); err != nil {
			t.Fatal(err)
		}
		var srv2 sink
		var d drops
		startRouter(t, zctx, b, out, RouterConfig{OnRecv: srv2.router, OnDrop: d.add, BacklogMax: 1})
		// Until the client saw its old connection close, a message may go
		// down it and be lost: send until one arrives.
		waitFor(t, 10*time.Second, func() error {
			if _, _, n := srv2.counts(); n > 0 {
				return nil
			}
			_, err := peers.TryPush(ep, Message{Rec: seq(2)})
			return fmt.Errorf("nothing received by the new router yet (push: %v)", err)
		})
		id := srv2.firstID(t)
		if err := out.TryPush(Message{To: id, Rec: seq(3)}); err != nil {
			t.Fatal(err)
		}
		cli.waitBytes(t, 8)
		waitFor(t, 10*time.Second, func() error {
			if n := d.count(ErrUnreachable); n != 1 {
				return fmt.Errorf("%d dropped as unreachable, want the one queued while no loop ran", n)
			}
			return nil
		})
	})
}

// Dealers that fail report it through OnFail and end; what they held
// (towards a server not there yet) goes back to its peer's queue, and the
// next Dealers loop on the same Peers delivers it, in order, once the
// server binds.
func TestLoopsDealersFailure(t *testing.T) {
	eachReconnecting(t, func(t *testing.T, tr transport) {
		zctx := newTestContext(t)
		b1, ep1 := tr.listen(t)
		b2, ep2 := tr.listen(t) // bound only after the failure
		var srv1 sink
		out := NewOutbox(10)
		startRouter(t, zctx, b1, out, RouterConfig{OnRecv: srv1.router})
		peers := NewPeers(10, 0)
		fails, onFail := failed()
		var cli sink
		d := startDealers(t, zctx, peers, DealersConfig{OnFail: onFail, OnRecv: func(addr string, b Batch) bool {
			c := b
			if fs, ok := c.Next(nil); ok && bytes.Equal(fs[0], poison) {
				panic("test: poisoned reply")
			}
			return cli.dealers(addr, b)
		}})
		for i := range 3 {
			if _, err := peers.TryPush(ep2, Message{Rec: seq(i)}); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, 10*time.Second, func() error {
			if h := peers.Get(ep2).held.Load(); h != 3 {
				return fmt.Errorf("the loop holds %d, want 3", h)
			}
			return nil
		})
		if _, err := peers.TryPush(ep1, Message{Rec: seq(9)}); err != nil {
			t.Fatal(err)
		}
		if err := out.TryPush(Message{To: srv1.firstID(t), Rec: poison}); err != nil {
			t.Fatal(err)
		}
		waitFailed(t, fails, d.Done())
		d.Stop()
		if n := peers.Unsent(); n != 3 {
			t.Fatalf("Unsent = %d after the failure, want the 3 held", n)
		}
		var srv2 sink
		startRouter(t, zctx, b2, NewOutbox(10), RouterConfig{OnRecv: srv2.router})
		startDealers(t, zctx, peers, DealersConfig{})
		srv2.waitBytes(t, 24)
		if !bytes.Equal(srv2.payload, seqs(0, 3)) {
			t.Fatalf("after the restart the server got %x", srv2.payload)
		}
	})
}

// A Router that cannot bind fails to start with the bind error, and leaves
// no goroutine.
func TestRouterBindFailure(t *testing.T) {
	zctx := newTestContext(t)
	b, _ := transports()[0].listen(t)
	startRouter(t, zctx, b, NewOutbox(1), RouterConfig{})
	b.Retry = 0
	_, err := StartRouter(zctx, NewOutbox(1), RouterConfig{Bind: b, Options: DefaultOptions(), OnRecv: func(Batch) bool { return false }})
	if err == nil || !strings.Contains(err.Error(), "bind") {
		t.Fatalf("a second router on a bound port: %v", err)
	}
}

// What libzmq does over inproc, which the loop tests run only over tcp and
// ipc: a DEALER's message to a name not bound yet is queued (not held by
// the loop) and delivered once a ROUTER binds it; but once that ROUTER
// closed, the DEALER never connects to the next one bound at the name.
// (A node's router restarted WithInproc is so out of reach of the inproc
// DEALERs of its process until they are closed as idle.)
func TestInprocNoReconnect(t *testing.T) {
	zctx := newTestContext(t)
	_, ep := transports()[2].listen(t)
	peers := NewPeers(10, 0)
	startDealers(t, zctx, peers, DealersConfig{})
	if _, err := peers.TryPush(ep, Message{Rec: seq(1)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() error { return emptyErr(peers.Unsent()) })
	r1 := rawSocket(t, zctx, zmq.ROUTER)
	if err := r1.Bind(ep); err != nil {
		t.Fatal(err)
	}
	if got, err := r1.RecvMessageBytes(0); err != nil || !bytes.Equal(got[1], seq(1)) {
		t.Fatalf("queued before the bind: got %q, %v", got, err)
	}
	r1.Close()
	r2 := rawSocket(t, zctx, zmq.ROUTER)
	waitFor(t, 10*time.Second, func() error { return r2.Bind(ep) }) // the name is freed asynchronously
	if _, err := peers.TryPush(ep, Message{Rec: seq(2)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() error {
		return errIf(peers.Get(ep).held.Load() != 1, "the loop does not hold the message yet")
	})
	if err := r2.SetRcvtimeo(50 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if got, err := r2.RecvMessageBytes(0); err == nil {
		t.Fatalf("the DEALER reached the new ROUTER (%q): libzmq reconnects inproc now; run the loop tests over inproc too", got)
	}
}
