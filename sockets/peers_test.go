package sockets

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"
)

// A peer with nothing pushed for IdleTimeout, and nothing queued, held or
// awaited, is forgotten and its DEALER closed: a later push makes a new
// queue and a new connection (the router sees another routing id). A peer
// with an answer awaited is kept until it is answered.
func TestLoopsIdleEviction(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		zctx := newTestContext(t)
		b1, ep1 := tr.listen(t)
		b2, ep2 := tr.listen(t)
		var srv1, srv2 sink
		startRouter(t, zctx, b1, NewOutbox(10), RouterConfig{OnRecv: srv1.router})
		startRouter(t, zctx, b2, NewOutbox(10), RouterConfig{OnRecv: srv2.router})
		peers := NewPeers(10, 0)
		startDealers(t, zctx, peers, DealersConfig{IdleTimeout: 100 * time.Millisecond})

		kept, err := peers.TryPush(ep1, Message{Rec: seq(1)})
		if err != nil {
			t.Fatal(err)
		}
		kept.Awaited()
		idle, err := peers.TryPush(ep2, Message{Rec: seq(2)})
		if err != nil {
			t.Fatal(err)
		}
		srv1.waitBytes(t, 8)
		srv2.waitBytes(t, 8)
		waitFor(t, 10*time.Second, func() error {
			if peers.Get(ep2) == idle {
				return errors.New("the idle peer is still there")
			}
			return nil
		})
		// Both were swept together: the awaited one stayed.
		if peers.Get(ep1) != kept {
			t.Fatal("a peer with an answer awaited was forgotten")
		}
		kept.Answered()
		waitFor(t, 10*time.Second, func() error {
			if peers.Get(ep1) == kept {
				return errors.New("the answered peer is still there")
			}
			return nil
		})

		// The forgotten peer's DEALER was closed: a new one connects.
		if _, err := peers.TryPush(ep2, Message{Rec: seq(3)}); err != nil {
			t.Fatal(err)
		}
		srv2.waitBytes(t, 16)
		srv2.mu.Lock()
		ids := len(srv2.ids)
		first, second := srv2.ids[0], srv2.ids[ids-1]
		srv2.mu.Unlock()
		if ids != 2 || bytes.Equal(first, second) {
			t.Errorf("the router saw %d routing ids, want 2 (a new connection after the idle one closed)", ids)
		}
	})
}

// Peers refuses a push towards one endpoint more than its limit with
// ErrTooManyPeers; once an idle one is forgotten there is room again.
func TestLoopsMaxPeers(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		zctx := newTestContext(t)
		b1, ep1 := tr.listen(t)
		b2, ep2 := tr.listen(t)
		var srv1, srv2 sink
		startRouter(t, zctx, b1, NewOutbox(10), RouterConfig{OnRecv: srv1.router})
		startRouter(t, zctx, b2, NewOutbox(10), RouterConfig{OnRecv: srv2.router})
		peers := NewPeers(10, 1)
		startDealers(t, zctx, peers, DealersConfig{IdleTimeout: 100 * time.Millisecond})
		if _, err := peers.TryPush(ep1, Message{Rec: seq(1)}); err != nil {
			t.Fatal(err)
		}
		if _, err := peers.TryPush(ep2, Message{Rec: seq(2)}); !errors.Is(err, ErrTooManyPeers) {
			t.Fatalf("a second peer of one allowed: %v, want ErrTooManyPeers", err)
		}
		srv1.waitBytes(t, 8)
		waitFor(t, 10*time.Second, func() error {
			_, err := peers.TryPush(ep2, Message{Rec: seq(2)})
			return err
		})
		srv2.waitBytes(t, 8)
		if _, _, n := srv2.counts(); n != 8 {
			t.Fatalf("the second router got %d bytes", n)
		}
	})
}

// The peer-queue bound holds with no loop running (the queues outlive
// loops), and Drain empties every queue.
func TestPeersBoundWithoutLoop(t *testing.T) {
	peers := NewPeers(3, 0)
	for i := range 3 {
		if _, err := peers.TryPush("tcp://a:1", Message{Rec: seq(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := peers.TryPush("tcp://a:1", Message{}); !errors.Is(err, ErrBackPressure) {
		t.Fatalf("push beyond the bound: %v", err)
	}
	if _, err := peers.TryPush("tcp://b:1", Message{Rec: seq(9)}); err != nil {
		t.Fatalf("another peer's queue is its own: %v", err)
	}
	var got []string
	peers.Drain(func(addr string, m Message) { got = append(got, fmt.Sprintf("%s/%x", addr, m.Rec)) })
	if len(got) != 4 || peers.Unsent() != 0 || peers.hasDirty() {
		t.Fatalf("drained %v, %d unsent left", got, peers.Unsent())
	}
}
