package relay_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/relay-dev/relay"
	"github.com/relay-dev/relay/internal/demo"
	"github.com/relay-dev/relay/supervisor"
)

// An actor killed more often than its restart intensity allows stops for
// good; the node then fails every call with ErrNodeFailed instead of
// restarting it in a loop.
func TestRestartIntensityExceeded(t *testing.T) {
	mm := newMatchmaker(t)
	srv := newNode(t, mm, "s0")
	s, err := srv.Serve(compute)
	if err != nil {
		t.Fatal(err)
	}
	(&demo.Endpoint{Host: "s0"}).Register(s)
	cli := newNode(t, mm, "client", relay.WithSupervisor(supervisor.OneForOne(1, time.Minute)))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cli.Call(ctx, compute, "add", 1, nil); err != nil {
		t.Fatalf("call before kills: %v", err)
	}

	if err := cli.KillActor(relay.ActorDealers); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() error {
		if cli.Restarts(relay.ActorDealers) < 1 {
			return errors.New("sender not restarted yet")
		}
		// Each attempt has its own deadline: a call caught by the restart
		// times out without eating the others' time.
		actx, acancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer acancel()
		return cli.Call(actx, compute, "add", 1, nil)
	})
	// Second failure within the minute: more than 1 restart, so it stops.
	if err := cli.KillActor(relay.ActorDealers); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() error {
		actx, acancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer acancel()
		err := cli.Call(actx, compute, "add", 1, nil)
		if !errors.Is(err, relay.ErrNodeFailed) {
			return errors.New("call after the second kill: " + errString(err))
		}
		if !strings.Contains(err.Error(), relay.ActorDealers) {
			t.Errorf("error %q does not name the failed actor", err)
		}
		return nil
	})
}

// A node that cannot bind its address does not start, and says why.
func TestStartBindFailure(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := relay.Start(ctx, relay.WithMatchmaker(newMatchmaker(t)), relay.WithBindAddress("192.0.2.1"),
		relay.WithSupervisor(supervisor.OneForOne(2, time.Second)))
	if err == nil {
		t.Fatal("Start on an address of no local interface succeeded")
	}
	if !strings.Contains(err.Error(), "bind") || !strings.Contains(err.Error(), "192.0.2.1") {
		t.Errorf("error %q does not say what failed (bind 192.0.2.1)", err)
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// The actors' former names (poller, dispatcher, sender, reply-waiter) still
// name them for KillActor, InjectFault and Restarts.
func TestActorFormerNames(t *testing.T) {
	n := newNode(t, newMatchmaker(t), "renamed")
	for former, now := range map[string]string{
		"poller": relay.ActorRouter, "dispatcher": relay.ActorHandlers,
		"sender": relay.ActorDealers, "reply-waiter": relay.ActorResender,
	} {
		if err := n.KillActor(former); err != nil {
			t.Fatalf("KillActor(%q): %v", former, err)
		}
		waitFor(t, 10*time.Second, func() error {
			if n.Restarts(now) != 1 || n.Restarts(former) != 1 {
				return fmt.Errorf("%s restarted %d times (as %s: %d), want 1", now, n.Restarts(now), former, n.Restarts(former))
			}
			return nil
		})
	}
	if err := n.InjectFault("sender", errors.New("injected")); err != nil {
		t.Fatalf("InjectFault(sender): %v", err)
	}
	if err := n.KillActor("no-such"); err == nil {
		t.Error("KillActor of an unknown actor: no error")
	}
}
