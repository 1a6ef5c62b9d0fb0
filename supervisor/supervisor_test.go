package supervisor_test

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/relay-dev/relay/supervisor"
)

func TestStrategyValidate(t *testing.T) {
	if err := supervisor.OneForOne(0, time.Second).Validate(); err == nil {
		t.Error("MaxRestarts 0 accepted")
	}
	// protoactor-go takes a Duration: 1000 would be 1µs, not 1s.
	if err := supervisor.AllForOne(3, 1000).Validate(); err == nil {
		t.Error("Within of 1µs accepted")
	}
	if err := supervisor.Default.Validate(); err != nil {
		t.Errorf("Default invalid: %v", err)
	}
}

// A child killed with Crash is restarted by its supervisor and the Monitor
// counts it; past the restart intensity it stops and GiveUp is called.
func TestCrashRestartAndGiveUp(t *testing.T) {
	sys := supervisor.NewSystem(slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer sys.Shutdown()
	mon := supervisor.NewMonitor(sys, "", slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer mon.Close()

	started := make(chan struct{}, 16)
	child := actor.PropsFromFunc(func(c actor.Context) {
		if _, ok := c.Message().(*actor.Started); ok {
			started <- struct{}{}
		}
	}, actor.WithReceiverMiddleware(supervisor.CrashMiddleware))
	pids := make(chan *actor.PID, 1)
	gaveUp := make(chan string, 1)
	tree := supervisor.Props(supervisor.OneForOne(1, time.Minute),
		[]supervisor.Child{{Name: "worker", Props: child}},
		func(name string, pid *actor.PID) { pids <- pid },
		func(name string, err error) { gaveUp <- name })
	root, err := sys.Root.SpawnNamed(tree, "tree")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sys.Root.StopFuture(root).Wait() }()
	pid := <-pids
	wait := func(what string, ch <-chan struct{}) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			t.Fatalf("timed out waiting for %s", what)
		}
	}
	wait("first start", started)
	changed := mon.Changed()
	select {
	case <-changed:
		t.Fatal("Changed closed before any supervision event")
	default:
	}
	sys.Root.Send(pid, &supervisor.Crash{Reason: "test"})
	wait("restart", started)
	wait("Changed to close at the restart", changed)
	if n := mon.Restarts("worker"); n != 1 {
		t.Errorf("Restarts(worker) = %d, want 1", n)
	}
	if ev := mon.Events(); len(ev) != 1 || ev[0].Actor != "worker" || ev[0].Directive != "RestartDirective" {
		t.Errorf("events %+v, want one RestartDirective of worker", ev)
	}
	sys.Root.Send(pid, &supervisor.Crash{Reason: "test again"})
	select {
	case name := <-gaveUp:
		if name != "worker" {
			t.Errorf("gave up on %q, want worker", name)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("second crash within the intensity window did not stop the child")
	}
}
