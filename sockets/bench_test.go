package sockets

import (
	"testing"
)

// benchEcho starts a Router that echoes every record back to its sender and
// a Dealers loop whose OnRecv sends the number of records that came back
// on got.
func benchEcho(b *testing.B, got chan<- int) (*Peers, string) {
	b.Helper()
	zctx := newTestContext(b)
	bind, ep := transports()[0].listen(b)
	out := NewOutbox(100_000)
	var frames [][]byte
	startRouter(b, zctx, bind, out, RouterConfig{OnRecv: func(batch Batch) bool {
		for {
			var ok bool
			if frames, ok = batch.Next(frames); !ok {
				return false
			}
			if err := out.TryPush(Message{To: frames[0], Rec: frames[1]}); err != nil {
				b.Error(err)
			}
		}
	}})
	peers := NewPeers(100_000, 0)
	var back [][]byte
	startDealers(b, zctx, peers, DealersConfig{OnRecv: func(_ string, batch Batch) bool {
		n := 0
		for {
			var ok bool
			if back, ok = batch.Next(back); !ok {
				break
			}
			n += len(back[0]) / 8 // the records of one batch come back together
		}
		got <- n
		return false
	}})
	return peers, ep
}

// BenchmarkLoopsRoundTrip: one record at a time from a Dealers loop to an
// echoing Router and back, over tcp (allocs/op counts both loops' share).
func BenchmarkLoopsRoundTrip(b *testing.B) { benchInflight(b, 1) }

// BenchmarkLoopsPipelined: up to 64 records in flight through the same
// echo.
func BenchmarkLoopsPipelined(b *testing.B) { benchInflight(b, 64) }

// benchInflight sends b.N records through the echo, up to window at a time.
func benchInflight(b *testing.B, window int) {
	got := make(chan int, 1024)
	peers, ep := benchEcho(b, got)
	rec := seq(1)
	b.ReportAllocs()
	b.ResetTimer()
	inflight, sent := 0, 0
	for done := 0; done < b.N; {
		for ; inflight < window && sent < b.N; sent, inflight = sent+1, inflight+1 {
			if _, err := peers.TryPush(ep, Message{Rec: rec}); err != nil {
				b.Fatal(err)
			}
		}
		n := <-got
		done, inflight = done+n, inflight-n
	}
}
