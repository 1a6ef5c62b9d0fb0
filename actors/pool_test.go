package actors

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relay-dev/relay/envelope"
	"github.com/relay-dev/relay/internal/track"
)

// gate is a handler that blocks until released, one request at a time,
// and says when each request starts.
type gate struct {
	started chan envelope.MsgID
	release chan struct{}
	running atomic.Int32
	most    atomic.Int32 // the most handlers running at once
}

func newGate() *gate {
	return &gate{started: make(chan envelope.MsgID, 1000), release: make(chan struct{})}
}

func (g *gate) serve(in *Inbound) {
	n := g.running.Add(1)
	for {
		m := g.most.Load()
		if n <= m || g.most.CompareAndSwap(m, n) {
			break
		}
	}
	g.started <- in.Rec.ID()
	<-g.release
	g.running.Add(-1)
}

// next waits for a request to start.
func (g *gate) next(t *testing.T) envelope.MsgID {
	t.Helper()
	select {
	case id := <-g.started:
		return id
	case <-time.After(10 * time.Second):
		t.Fatal("no request started")
		return envelope.MsgID{}
	}
}

// inbound returns n requests.
func inbound(t *testing.T, n int) []Inbound {
	ins := make([]Inbound, n)
	for i := range ins {
		ins[i] = Inbound{Rec: *view(t, record(envelope.KindCast, envelope.NewMsgID(), nil))}
	}
	return ins
}

// newTestPool makes a pool whose workers are joined at the end of the test.
func newTestPool(t *testing.T, serve func(*Inbound), workers, limit int, resume func()) *Pool {
	var group track.Group
	p := NewPool(serve, &group, workers, limit, resume)
	t.Cleanup(func() {
		p.Close()
		group.Wait()
	})
	return p
}

// The pool runs at most its workers' number of handlers at once; the rest
// wait in its queue, in order, and each request is served once.
func TestPoolBoundedWorkers(t *testing.T) {
	g := newGate()
	p := newTestPool(t, g.serve, 2, 100, nil)
	ins := inbound(t, 10)
	if p.Submit(ins) {
		t.Fatal("10 requests under a limit of 100 asked to pause")
	}
	first := map[envelope.MsgID]bool{g.next(t): true, g.next(t): true}
	if p.Running() != 2 || p.Queued() != 8 {
		t.Fatalf("running %d, queued %d; want 2 and 8", p.Running(), p.Queued())
	}
	if !first[ins[0].Rec.ID()] || !first[ins[1].Rec.ID()] {
		t.Fatal("the first two requests were not served first")
	}
	seen := map[envelope.MsgID]bool{}
	for id := range first {
		seen[id] = true
	}
	for i := 2; i < len(ins); i++ {
		g.release <- struct{}{}
		id := g.next(t)
		if seen[id] {
			t.Fatalf("request %v served twice", id)
		}
		seen[id] = true
	}
	close(g.release)
	if len(seen) != 10 || g.most.Load() != 2 {
		t.Fatalf("%d requests served, %d at most at once; want 10 and 2", len(seen), g.most.Load())
	}
}

// Submit asks the loop to pause once the queue reaches its limit; the pool
// calls resume once, when the queue has fallen below half of it.
func TestPoolPauseResume(t *testing.T) {
	g := newGate()
	var resumed atomic.Int32
	p := newTestPool(t, g.serve, 1, 4, func() { resumed.Add(1) })
	if p.Submit(inbound(t, 1)) {
		t.Fatal("one request asked to pause")
	}
	g.next(t)
	if !p.Submit(inbound(t, 4)) || !p.Full() {
		t.Fatal("a queue at its limit did not ask to pause")
	}
	for queued := 3; queued >= 0; queued-- {
		g.release <- struct{}{}
		g.next(t) // the worker took the next: the queue holds queued now
		want := int32(0)
		if queued < 2 {
			want = 1
		}
		if got := resumed.Load(); got != want {
			t.Fatalf("with %d queued of a limit of 4: resumed %d times, want %d", queued, got, want)
		}
	}
	close(g.release)
}

// Close lets the workers finish what is queued and exit; Submit after it
// takes nothing.
func TestPoolClose(t *testing.T) {
	var served atomic.Int32
	var group track.Group
	block := make(chan struct{})
	var once sync.Once
	p := NewPool(func(*Inbound) {
		once.Do(func() { <-block })
		served.Add(1)
	}, &group, 1, 100, nil)
	p.Submit(inbound(t, 5))
	p.Close()
	close(block)
	group.Wait()
	if served.Load() != 5 {
		t.Fatalf("%d of 5 queued requests served after Close", served.Load())
	}
	if p.Submit(inbound(t, 1)) || p.Queued() != 0 {
		t.Fatal("Submit after Close took a request")
	}
}
