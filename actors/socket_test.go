package actors

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/relay-dev/relay/sockets"
	"github.com/relay-dev/relay/supervisor"
)

// payloads collects what a router received. Safe for concurrent use.
type payloads struct {
	mu  sync.Mutex
	got []string
}

func (p *payloads) add(s string) {
	p.mu.Lock()
	p.got = append(p.got, s)
	p.mu.Unlock()
}

func (p *payloads) has(s string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, g := range p.got {
		if g == s {
			return nil
		}
	}
	return fmt.Errorf("%q not received (got %q)", s, p.got)
}

// A socket loop that fails (here its receive callback panics in the
// loop's goroutine, as a socket error ends it) reports through OnFail; its
// socket actor fails with a LoopError, its supervisor restarts it, the old
// loop is stopped and a new one started on the same port, and the client
// reconnects to it. Stopping the tree stops the loop.
func TestSocketActorRestartsFailedLoop(t *testing.T) {
	sys := supervisor.NewSystem(discard)
	defer sys.Shutdown()
	mon := supervisor.NewMonitor(sys, "node", discard)
	defer mon.Close()
	zctx, err := sockets.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := zctx.Close(5 * time.Second); err != nil {
			t.Error(err)
		}
	}()

	var got payloads
	var counters Counters
	loops := make(chan *sockets.Router, 4)
	stopped := make(chan struct{}, 4)
	bind := sockets.Bind{Host: "127.0.0.1", PortMin: 20000, PortMax: 29999, Retry: 2 * time.Second}
	cfg := &SocketConfig{
		Name: "poller", Counters: &counters, CloseLinger: &Linger{},
		Start: func(onFail func(error)) (Loop, error) {
			r, err := sockets.StartRouter(zctx, sockets.NewOutbox(10), sockets.RouterConfig{
				Bind: bind, Options: sockets.DefaultOptions(), OnFail: onFail,
				OnRecv: func(b sockets.Batch) bool {
					for {
						fs, ok := b.Next(nil)
						if !ok {
							return false
						}
						if bytes.Equal(fs[1], []byte("poison")) {
							panic("test: poisoned batch")
						}
						got.add(string(fs[1]))
					}
				},
			})
			if err != nil {
				return nil, err
			}
			bind.Port = r.Port() // a restart binds the same port, as the node's does
			loops <- r
			return r, nil
		},
		Stopped: func() { stopped <- struct{}{} },
	}
	tree := supervisor.Props(supervisor.OneForOne(3, time.Minute),
		[]supervisor.Child{{Name: "poller", Props: SocketProps(cfg)}}, nil,
		func(name string, err error) { t.Errorf("%s given up: %v", name, err) })
	root, err := sys.Root.SpawnNamed(tree, "node")
	if err != nil {
		t.Fatal(err)
	}
	first := nextLoop(t, loops)

	peers := sockets.NewPeers(10, 0)
	d, err := sockets.StartDealers(zctx, peers, sockets.DealersConfig{Options: sockets.DefaultOptions(),
		OnRecv: func(string, sockets.Batch) bool { return false }})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Stop()
	ep := first.Endpoint()
	push := func(s string) {
		t.Helper()
		if _, err := peers.TryPush(ep, sockets.Message{Rec: []byte(s)}); err != nil {
			t.Fatal(err)
		}
	}
	push("one")
	waitFor(t, 10*time.Second, func() error { return got.has("one") })
	push("poison")

	second := nextLoop(t, loops)
	select {
	case <-first.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the failed loop's goroutine did not end")
	}
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("the actor did not stop its failed loop")
	}
	if second.Endpoint() != ep {
		t.Fatalf("the restarted loop is at %s, want %s", second.Endpoint(), ep)
	}
	// Until the client saw its old connection close, a message may go down
	// it and be lost: send until one arrives.
	waitFor(t, 10*time.Second, func() error {
		if err := got.has("two"); err == nil {
			return nil
		}
		_, err := peers.TryPush(ep, sockets.Message{Rec: []byte("two")})
		return fmt.Errorf("nothing received by the new loop yet (push: %v)", err)
	})
	if n := counters.LoopFailures.Load(); n != 1 {
		t.Errorf("LoopFailures = %d, want 1", n)
	}
	waitFor(t, 10*time.Second, func() error { return errIf(mon.Restarts("poller") != 1, "restarts %d", mon.Restarts("poller")) })
	if ev := mon.Events(); len(ev) != 1 || !strings.Contains(ev[0].Reason, "poller socket loop failed") {
		t.Errorf("supervision events %+v, want one restart of the poller for its loop", ev)
	}

	if err := sys.Root.StopFuture(root).Wait(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-second.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("stopping the tree left its loop running")
	}
}

func nextLoop(t *testing.T, loops chan *sockets.Router) *sockets.Router {
	t.Helper()
	select {
	case r := <-loops:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no loop started")
		return nil
	}
}

// A socket actor whose loop cannot start fails at every start; past its
// supervisor's restart intensity it is given up, and the node is told.
func TestSocketActorGivesUp(t *testing.T) {
	sys := supervisor.NewSystem(discard)
	defer sys.Shutdown()
	refused := errors.New("test: cannot bind")
	var starts int
	var mu sync.Mutex
	cfg := &SocketConfig{Name: "sender", Counters: &Counters{}, Start: func(func(error)) (Loop, error) {
		mu.Lock()
		starts++
		mu.Unlock()
		return nil, refused
	}}
	gaveUp := make(chan error, 1)
	tree := supervisor.Props(supervisor.OneForOne(2, time.Minute),
		[]supervisor.Child{{Name: "sender", Props: SocketProps(cfg)}}, nil,
		func(_ string, err error) { gaveUp <- err })
	root := sys.Root.Spawn(tree)
	defer func() { _ = sys.Root.StopFuture(root).Wait() }()
	select {
	case err := <-gaveUp:
		if err == nil || !strings.Contains(err.Error(), "sender") {
			t.Errorf("given up with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a socket actor that cannot start was not given up")
	}
	mu.Lock()
	defer mu.Unlock()
	if starts != 3 {
		t.Errorf("%d starts, want 3 (the first and 2 restarts)", starts)
	}
}

// fakeLoop is a Loop with no socket, for the actor's own logic.
type fakeLoop struct{ stopped chan struct{} }

func (f *fakeLoop) Stop()                    { close(f.stopped) }
func (f *fakeLoop) StopLinger(time.Duration) { close(f.stopped) }

// A loop that fails before its Start has even returned (it reports from
// its own goroutine, at any time after it is ready) is restarted all the
// same; a failure reported by a loop already replaced is ignored.
func TestSocketActorEarlyFailure(t *testing.T) {
	sys := supervisor.NewSystem(discard)
	defer sys.Shutdown()
	mon := supervisor.NewMonitor(sys, "early", discard)
	defer mon.Close()
	var counters Counters
	loops := make(chan *fakeLoop, 4)
	pids := make(chan *actor.PID, 1)
	var mu sync.Mutex
	var fails []func(error)
	probed := make(chan struct{})
	cfg := &SocketConfig{Name: "sender", Counters: &counters, CloseLinger: &Linger{},
		Receive: func(_ Loop, msg any) {
			if msg == "probe" {
				close(probed)
			}
		},
		Start: func(onFail func(error)) (Loop, error) {
			mu.Lock()
			fails = append(fails, onFail)
			n := len(fails)
			mu.Unlock()
			if n == 1 {
				onFail(errors.New("test: failed at once"))
			}
			l := &fakeLoop{stopped: make(chan struct{})}
			loops <- l
			return l, nil
		}}
	tree := supervisor.Props(supervisor.OneForOne(3, time.Minute),
		[]supervisor.Child{{Name: "sender", Props: SocketProps(cfg)}},
		func(_ string, pid *actor.PID) { pids <- pid },
		func(name string, err error) { t.Errorf("%s given up: %v", name, err) })
	root, err := sys.Root.SpawnNamed(tree, "early")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sys.Root.StopFuture(root).Wait() }()
	first := <-loops
	select {
	case <-first.stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("a loop that failed before Start returned was not stopped and restarted")
	}
	second := <-loops
	waitFor(t, 10*time.Second, func() error { return errIf(counters.LoopFailures.Load() != 1, "no failure counted") })

	// The first loop reports again, late: the second is not restarted.
	mu.Lock()
	late := fails[0]
	mu.Unlock()
	late(errors.New("test: late report"))
	sys.Root.Send(<-pids, "probe") // handled after the late report: one mailbox, one sender
	select {
	case <-probed:
	case <-time.After(10 * time.Second):
		t.Fatal("the probe was not handled")
	}
	select {
	case <-second.stopped:
		t.Fatal("a late report of a replaced loop restarted the current one")
	default:
	}
	if n := counters.LoopFailures.Load(); n != 1 || mon.Restarts("sender") != 1 {
		t.Errorf("%d failures counted, %d restarts; want 1 and 1", n, mon.Restarts("sender"))
	}
}
