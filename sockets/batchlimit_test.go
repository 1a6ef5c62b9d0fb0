package sockets

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

// Batches stay within the peers' MaxMsgSize: records that each fit are
// never dropped as oversized for having shared a batch, in either
// direction.
func TestLoopsBatchWithinMaxMsgSize(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		zctx := newTestContext(t)
		b, ep := tr.listen(t)
		o := DefaultOptions()
		o.MaxMsgSize = 1024
		var srv, cli sink
		var srvDropped, cliDropped dropped
		out := NewOutbox(1000)
		startRouter(t, zctx, b, out, RouterConfig{Options: o, OnRecv: srv.router, OnDropped: srvDropped.add})
		const n = 300 // 2400 bytes queued together
		peers := NewPeers(n, 0)
		for i := range n {
			if _, err := peers.TryPush(ep, Message{Rec: seq(i)}); err != nil {
				t.Fatal(err)
			}
		}
		startDealers(t, zctx, peers, DealersConfig{Options: o, OnRecv: cli.dealers, OnDropped: cliDropped.add})
		waitFor(t, 10*time.Second, func() error {
			if _, _, size := srv.counts(); size != 8*n || srvDropped.oversized.Load() != 0 {
				return fmt.Errorf("router got %d of %d bytes, %d messages dropped as oversized", size, 8*n, srvDropped.oversized.Load())
			}
			return nil
		})
		if !bytes.Equal(srv.payload, seqs(0, n)) {
			t.Fatal("the records are not those sent, in order")
		}
		id := srv.firstID(t)
		for i := range n {
			if err := out.TryPush(Message{To: id, Rec: seq(i)}); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, 10*time.Second, func() error {
			if _, _, size := cli.counts(); size != 8*n || cliDropped.oversized.Load() != 0 {
				return fmt.Errorf("dealers got %d of %d bytes, %d messages dropped as oversized", size, 8*n, cliDropped.oversized.Load())
			}
			return nil
		})
	})
}

// The packer starts a new ZeroMQ message before its limit would be passed;
// a record larger than the limit travels alone.
func TestPackerLimit(t *testing.T) {
	p := packer{limit: batchLimit(1024)}
	for range 300 {
		p.add(nil, seq(0))
	}
	p.add(nil, make([]byte, 2000))
	p.add(nil, seq(1))
	pk := packed{buf: p.bytes()}
	var sizes []int
	for {
		fs, ok := pk.next(nil)
		if !ok {
			break
		}
		sizes = append(sizes, len(fs[0]))
	}
	want := []int{960, 960, 480, 2000, 8} // batchLimit(1024) = 960
	if fmt.Sprint(sizes) != fmt.Sprint(want) {
		t.Fatalf("payloads of %v bytes, want %v", sizes, want)
	}
	if batchLimit(0) != maxBatch || batchLimit(16<<20) != maxBatch {
		t.Fatal("without a small MaxMsgSize, batches are maxBatch")
	}
}
