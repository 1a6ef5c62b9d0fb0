package sockets

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"
)

// failures collects the errors a loop reports through OnFail, as the
// actor that owns the loop gets them.
type failures chan error

func (f failures) onFail(err error) { f <- err }

// wait waits for the loop to report a failure that wraps fault, then for
// its goroutine to end; then it stops the loop, as the owning actor does
// before it starts a new one (Restarting).
func (f failures) wait(t *testing.T, fault error, l interface {
	Done() <-chan struct{}
	Stop()
}) {
	t.Helper()
	select {
	case err := <-f:
		if !errors.Is(err, fault) {
			t.Fatalf("OnFail got %v, want an error wrapping %v", err, fault)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no failure reported 10s after the fault")
	}
	select {
	case <-l.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the failed loop's goroutine still runs 10s after its failure")
	}
	l.Stop()
}

// echoLoops are a Router and a Dealers loop that talk to each other: the
// test pushes records to the router's endpoint, and replies to the
// routing ids the router saw.
type echoLoops struct {
	ep       string
	peers    *Peers
	out      *Outbox
	srv, cli *sink
}

// roundTrip pushes record i to the router and replies with it to the
// connection it came on; it waits for both and checks them. Until the
// dealers' connection is up (after a restart of either loop) a push may
// be lost on a connection that is going away, so it pushes again until
// the router has the record.
func (e *echoLoops) roundTrip(t *testing.T, i int) {
	t.Helper()
	_, _, before := e.srv.counts()
	waitFor(t, 10*time.Second, func() error {
		if _, _, n := e.srv.counts(); n > before {
			return nil
		}
		_, err := e.peers.TryPush(e.ep, Message{Rec: seq(i)})
		return fmt.Errorf("record %d not received by the router yet (push: %v)", i, err)
	})
	e.srv.mu.Lock()
	got := bytes.Clone(e.srv.payload[before:])
	id := bytes.Clone(e.srv.ids[len(e.srv.ids)-1]) // the connection it came on
	e.srv.mu.Unlock()
	if !bytes.Contains(got, seq(i)) {
		t.Fatalf("the router got %x, want record %d", got, i)
	}
	_, _, had := e.cli.counts()
	if err := e.out.TryPush(Message{To: id, Rec: seq(i)}); err != nil {
		t.Fatal(err)
	}
	e.cli.waitBytes(t, had+8)
	e.cli.mu.Lock()
	got = bytes.Clone(e.cli.payload[had:])
	e.cli.mu.Unlock()
	if !bytes.Equal(got, seq(i)) {
		t.Fatalf("the dealers got %x, want reply %d", got, i)
	}
}

// A socket that fails takes its loop down through the real failure path
// (the loop's own error return, OnFail, the goroutine's end), and a new
// loop on the same queues, as the owning actor starts, serves again: over
// tcp, ipc and inproc, first for the Dealers, then for the Router, whose
// replies queued while no loop ran are delivered by the next one.
func TestLoopsFaultRestart(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		zctx := newTestContext(t)
		b, ep := tr.listen(t)
		e := &echoLoops{ep: ep, peers: NewPeers(100, 0), out: NewOutbox(100), srv: &sink{}, cli: &sink{}}
		rFails, dFails := make(failures, 1), make(failures, 1)
		r := startRouter(t, zctx, b, e.out, RouterConfig{OnRecv: e.srv.router, OnFail: rFails.onFail})
		d := startDealers(t, zctx, e.peers, DealersConfig{OnRecv: e.cli.dealers, OnFail: dFails.onFail})
		e.roundTrip(t, 1)

		fault := errors.New("test: dealer socket fault")
		d.InjectFault(fault)
		dFails.wait(t, fault, d)
		if n := e.peers.Unsent(); n != 0 {
			t.Fatalf("Unsent = %d after the dealers' failure, want 0", n)
		}
		startDealers(t, zctx, e.peers, DealersConfig{OnRecv: e.cli.dealers, OnFail: dFails.onFail})
		e.roundTrip(t, 2)

		fault = errors.New("test: router socket fault")
		r.InjectFault(fault)
		rFails.wait(t, fault, r)
		// A reply queued while no loop runs, to a connection the restart
		// closed: the next loop holds it and drops it at its deadline.
		if err := e.out.TryPush(Message{To: []byte("gone"), Rec: seq(9), Deadline: time.Now().Add(50 * time.Millisecond).UnixNano()}); err != nil {
			t.Fatal(err)
		}
		var d2 drops
		restartRouter(t, zctx, b, e.out, RouterConfig{OnRecv: e.srv.router, OnDrop: d2.add, OnFail: rFails.onFail})
		if tr.name == "inproc" {
			// libzmq never connects an inproc DEALER again to a name
			// bound anew (TestInprocNoReconnect): new dealers reach the
			// new router, as a node's do once the old ones are idle.
			e.peers = NewPeers(100, 0)
			startDealers(t, zctx, e.peers, DealersConfig{OnRecv: e.cli.dealers, OnFail: dFails.onFail})
		}
		e.roundTrip(t, 3)
		waitFor(t, 10*time.Second, func() error {
			return errIf(d2.count(ErrUnreachable) != 1, "the reply queued while no router ran is not dropped as unreachable yet")
		})
	})
}

// restartRouter starts a Router as startRouter does, trying again while
// its endpoint is not free yet (an inproc name is freed asynchronously
// after its socket closed), as the owning actor's restarts would.
func restartRouter(t *testing.T, zctx *Context, b Bind, out *Outbox, cfg RouterConfig) *Router {
	t.Helper()
	cfg.Bind, cfg.Options = b, DefaultOptions()
	var r *Router
	waitFor(t, 10*time.Second, func() (err error) {
		r, err = StartRouter(zctx, out, cfg)
		return err
	})
	t.Cleanup(r.Stop)
	return r
}
