package sockets

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"
)

// The records of the tracking test: a kind byte ('c' a one-way message,
// 'q' a request, 'a' an answer) and a 16-byte id.
const trackRecLen = 17

func trackRec(kind byte, n int) []byte {
	var id [16]byte
	id[15] = byte(n)
	return append([]byte{kind}, id[:]...)
}

// trackKind is a Dealers' Track for trackRec records.
func trackKind(rec []byte) (Tracking, [16]byte) {
	id := [16]byte(rec[1:trackRecLen])
	switch rec[0] {
	case 'c':
		return Unconfirmed, id
	case 'q':
		return Answered, id
	}
	return Untracked, id
}

// trackAnswers is a Dealers' Answers for trackRec records.
func trackAnswers(b Batch, f func(id [16]byte)) {
	var fs [][]byte
	for {
		var ok bool
		if fs, ok = b.Next(fs); !ok {
			return
		}
		for p := fs[len(fs)-1]; len(p) >= trackRecLen; p = p[trackRecLen:] {
			if p[0] == 'a' {
				f([16]byte(p[1:trackRecLen]))
			}
		}
	}
}

// With Track, a Dealers loop reports the one-way messages a dropped
// connection may have lost, and only those: the ones an answer to a
// later request confirmed are not reported, the ones sent after it are,
// with ErrConnectionLost. The tracking holds up nothing: a request sent
// after the drop, to a new router on the same endpoint, is answered.
// (Over tcp and ipc: an inproc DEALER does not connect again.)
func TestLoopsDealersTrackLost(t *testing.T) {
	eachReconnecting(t, func(t *testing.T, tr transport) {
		zctx := newTestContext(t)
		b, ep := tr.listen(t)
		out := NewOutbox(10)
		var srv, cli sink
		// The router answers each request ('q') with 'a' and its id.
		answer := func(batch Batch) bool {
			c := batch
			var fs [][]byte
			for {
				var ok bool
				if fs, ok = c.Next(fs); !ok {
					break
				}
				for p := fs[1]; len(p) >= trackRecLen; p = p[trackRecLen:] {
					if p[0] == 'q' {
						_ = out.TryPush(Message{To: bytes.Clone(fs[0]), Rec: append([]byte{'a'}, p[1:trackRecLen]...)})
					}
				}
			}
			return srv.router(batch)
		}
		r := startRouter(t, zctx, b, out, RouterConfig{OnRecv: answer})
		peers := NewPeers(100, 0)
		var d drops
		startDealers(t, zctx, peers, DealersConfig{OnRecv: cli.dealers, OnDrop: d.dealers,
			Track: trackKind, Answers: trackAnswers})
		send := func(recs ...[]byte) {
			t.Helper()
			_, _, had := srv.counts()
			for _, rec := range recs {
				if _, err := peers.TryPush(ep, Message{Rec: rec}); err != nil {
					t.Fatal(err)
				}
			}
			srv.waitBytes(t, had+len(recs)*trackRecLen)
		}
		send(trackRec('c', 1), trackRec('c', 2), trackRec('c', 3), trackRec('q', 4))
		cli.waitBytes(t, trackRecLen) // the answer to 4 confirms 1-3
		send(trackRec('c', 5), trackRec('c', 6))

		// The connection drops; 5 and 6 may not have been read. (They are
		// kept for unreadAge, 1 s: a stall that long before the drop is
		// seen would let them go unreported.)
		r.Stop()
		waitFor(t, 10*time.Second, func() error {
			if n := d.total(); n != 2 {
				return fmt.Errorf("%d reported, want 2 (the casts sent after the last answer)", n)
			}
			return nil
		})
		d.mu.Lock()
		for i, err := range d.errs {
			if want := trackRec('c', 5+i); !errors.Is(err, ErrConnectionLost) || !bytes.Equal(d.recs[i], want) {
				t.Errorf("report %d: %x, %v; want %x with ErrConnectionLost", i, d.recs[i], err, want)
			}
		}
		d.mu.Unlock()

		var srv2 sink
		startRouter(t, zctx, b, out, RouterConfig{OnRecv: func(batch Batch) bool {
			c := batch
			if fs, ok := c.Next(nil); ok && bytes.Contains(fs[1], trackRec('q', 7)) {
				_ = out.TryPush(Message{To: bytes.Clone(fs[0]), Rec: trackRec('a', 7)})
			}
			return srv2.router(batch)
		}})
		_, _, had := cli.counts()
		waitFor(t, 10*time.Second, func() error {
			if _, _, n := cli.counts(); n > had {
				return nil
			}
			_, err := peers.TryPush(ep, Message{Rec: trackRec('q', 7)})
			return fmt.Errorf("no answer from the new router yet (push: %v)", err)
		})
	})
}
