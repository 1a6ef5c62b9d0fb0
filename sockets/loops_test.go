package sockets

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"
)

// Records queued for one peer before its loop runs travel in as few
// ZeroMQ messages as maxBatch allows, arrive whole and in order at the
// router, and the router's replies come back down the connection they
// came on, in order.
func TestLoopsRoundTrip(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		zctx := newTestContext(t)
		b, ep := tr.listen(t)
		var srv, cli sink
		out := NewOutbox(10_000)
		startRouter(t, zctx, b, out, RouterConfig{OnRecv: srv.router})

		// Queued while no loop runs: the loop takes them all in one turn.
		const n = 2000
		peers := NewPeers(n, 0)
		for i := range n {
			if _, err := peers.TryPush(ep, Message{Rec: seq(i)}); err != nil {
				t.Fatalf("push %d: %v", i, err)
			}
		}
		startDealers(t, zctx, peers, DealersConfig{OnRecv: cli.dealers})
		srv.waitBytes(t, 8*n)
		if _, msgs, _ := srv.counts(); msgs != 1 {
			t.Errorf("%d records of 8 bytes came in %d ZeroMQ messages, want 1 batch", n, msgs)
		}
		srv.mu.Lock()
		got := bytes.Clone(srv.payload)
		srv.mu.Unlock()
		if !bytes.Equal(got, seqs(0, n)) {
			t.Fatal("the router's records are not those sent, in order")
		}

		id := srv.firstID(t)
		for i := range n {
			if err := out.TryPush(Message{To: id, Rec: seq(i)}); err != nil {
				t.Fatalf("reply %d: %v", i, err)
			}
		}
		cli.waitBytes(t, 8*n)
		cli.mu.Lock()
		got = bytes.Clone(cli.payload)
		cli.mu.Unlock()
		if !bytes.Equal(got, seqs(0, n)) {
			t.Fatal("the replies are not those sent, in order")
		}
	})
}

// Records larger than a batch's share split into ZeroMQ messages of at most
// maxBatch bytes of records each.
func TestLoopsBatchSplit(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		zctx := newTestContext(t)
		b, ep := tr.listen(t)
		var srv sink
		startRouter(t, zctx, b, NewOutbox(10), RouterConfig{OnRecv: srv.router})
		const n, size = 20, 10 << 10 // six records fit a batch: 6+6+6+2
		peers := NewPeers(n, 0)
		rec := bytes.Repeat([]byte{7}, size)
		for i := range n {
			if _, err := peers.TryPush(ep, Message{Rec: rec}); err != nil {
				t.Fatalf("push %d: %v", i, err)
			}
		}
		startDealers(t, zctx, peers, DealersConfig{})
		srv.waitBytes(t, n*size)
		if _, msgs, _ := srv.counts(); msgs != 4 {
			t.Errorf("%d records of %d bytes came in %d ZeroMQ messages, want 4 (at most %d bytes each)", n, size, msgs, maxBatch)
		}
	})
}

// A message larger than Options.MaxMsgSize is dropped before OnRecv and
// counted as oversized, on either side; the connection keeps working.
func TestLoopsOversized(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		zctx := newTestContext(t)
		b, ep := tr.listen(t)
		o := DefaultOptions()
		o.MaxMsgSize = 1024
		var srv, cli sink
		var srvDropped, cliDropped dropped
		out := NewOutbox(10)
		startRouter(t, zctx, b, out, RouterConfig{Options: o, OnRecv: srv.router, OnDropped: srvDropped.add})
		peers := NewPeers(10, 0)
		startDealers(t, zctx, peers, DealersConfig{Options: o, OnRecv: cli.dealers, OnDropped: cliDropped.add})

		// One at a time: records queued together would share a batch.
		big := bytes.Repeat([]byte{1}, 1500)
		for i, rec := range [][]byte{seq(1), big, seq(2)} {
			if _, err := peers.TryPush(ep, Message{Rec: rec}); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 10*time.Second, func() error {
				_, msgs, _ := srv.counts()
				if n := int(srvDropped.oversized.Load()); msgs+n != i+1 {
					return fmt.Errorf("router got %d messages and counted %d oversized, want %d in all", msgs, n, i+1)
				}
				return nil
			})
		}
		srv.waitBytes(t, 16)
		if !bytes.Equal(srv.payload, seqs(1, 3)) || srvDropped.malformed.Load() != 0 {
			t.Fatalf("router got %x (malformed %d), want the two small records", srv.payload, srvDropped.malformed.Load())
		}

		id := srv.firstID(t)
		if err := out.TryPush(Message{To: id, Rec: big}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, func() error { return errIf(cliDropped.oversized.Load() != 1, "no oversized counted") })
		if err := out.TryPush(Message{To: id, Rec: seq(3)}); err != nil {
			t.Fatal(err)
		}
		cli.waitBytes(t, 8)
		if n := cliDropped.oversized.Load(); n != 1 || !bytes.Equal(cli.payload, seq(3)) {
			t.Fatalf("dealers counted %d oversized and got %x, want 1 and the small reply", n, cli.payload)
		}
	})
}

// A message of more frames than a loop takes is dropped whole and counted
// as malformed, on either side; the next message still arrives.
func TestLoopsMalformedFrames(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		zctx := newTestContext(t)
		b, ep := tr.listen(t)
		var srv sink
		var srvDropped dropped
		startRouter(t, zctx, b, NewOutbox(10), RouterConfig{OnRecv: srv.router, OnDropped: srvDropped.add})

		// To the router: [id] + 5 frames is more than maxFrames.
		raw := rawSocket(t, zctx, zmq.DEALER)
		if err := raw.Connect(ep); err != nil {
			t.Fatal(err)
		}
		if _, err := raw.SendMessage("a", "b", "c", "d", "e"); err != nil {
			t.Fatal(err)
		}
		if _, err := raw.SendMessage(seq(9)); err != nil {
			t.Fatal(err)
		}
		srv.waitBytes(t, 8)
		if n := srvDropped.malformed.Load(); n != 1 {
			t.Errorf("router counted %d malformed, want 1", n)
		}

		// To a dealer: a raw ROUTER answers its first message with 5 frames,
		// then with one.
		rawb, rawep := tr.listen(t)
		rawr := rawSocket(t, zctx, zmq.ROUTER)
		bound := rawep
		if len(rawb.Also) > 0 {
			bound = rawb.Also[0]
		}
		if err := rawr.Bind(bound); err != nil {
			t.Fatal(err)
		}
		var cli sink
		var cliDropped dropped
		peers := NewPeers(10, 0)
		startDealers(t, zctx, peers, DealersConfig{OnRecv: cli.dealers, OnDropped: cliDropped.add})
		if _, err := peers.TryPush(rawep, Message{Rec: seq(1)}); err != nil {
			t.Fatal(err)
		}
		got, err := rawr.RecvMessageBytes(0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rawr.SendMessage(got[0], "a", "b", "c", "d", "e"); err != nil {
			t.Fatal(err)
		}
		if _, err := rawr.SendMessage(got[0], seq(2)); err != nil {
			t.Fatal(err)
		}
		cli.waitBytes(t, 8)
		if n := cliDropped.malformed.Load(); n != 1 || !bytes.Equal(cli.payload, seq(2)) {
			t.Errorf("dealers counted %d malformed and got %x, want 1 and the good message", n, cli.payload)
		}
	})
}
