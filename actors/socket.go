package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// Loop is a socket loop of package sockets, as its actor sees it.
type Loop interface {
	// Stop ends the loop at once, closing its sockets with linger 0.
	Stop()
	// StopLinger ends the loop, letting its sockets deliver what they hold
	// for up to the given time.
	StopLinger(time.Duration)
}

// SocketConfig configures a socket actor: the one owner of a socket loop.
type SocketConfig struct {
	// Name is the actor's name, in errors.
	Name string
	// Start starts a new loop; the loop calls onFail with the error that
	// ends it, from its own goroutine.
	Start func(onFail func(error)) (Loop, error)
	// Receive, when set, handles the actor's other messages, with its
	// current loop (nil while it has none).
	Receive func(loop Loop, msg any)
	// Stopped, when set, is called after the loop stopped for a restart or
	// the node's close.
	Stopped  func()
	Counters *Counters
	// CloseLinger is how long the sockets may still deliver what they hold
	// when the node closes (not on restarts).
	CloseLinger *Linger
}

// SocketProps builds a socket actor. It starts its loop in Started, stops
// it in Restarting (linger 0: a restart loses what libzmq held) and
// Stopping (with the close linger), and fails, so that its supervisor
// restarts it, when the loop reports an error. Every socket of a node is
// owned this way: the router, the dealers, the subscriber.
func SocketProps(cfg *SocketConfig) *actor.Props {
	return props(func() actor.Actor { return &socketActor{cfg: cfg} })
}

type socketActor struct {
	cfg  *SocketConfig
	loop Loop
	// started is the token of the current loop's start: a failure report
	// counts only if it carries it (not a stopped loop's late one).
	started *loopStart
}

// Fault asks a socket actor to make its loop fail with Err through the
// loop's own error path (the sockets' InjectFault: its sockets' next
// receive returns Err), so that the loop reports it, the actor fails and
// its supervisor restarts it, as after a real socket error. Without a loop
// at the time, it does nothing. For tests and chaos tools.
type Fault struct{ Err error }

// loopStart is one start of a loop, made before the loop runs, so that
// the loop's failure report can name it without reading anything the
// actor writes. Not of size zero: pointers to those may be equal.
type loopStart struct{ _ byte }

func (a *socketActor) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *loopFailed:
		if m.start == a.started && a.loop != nil {
			a.cfg.Counters.LoopFailures.Add(1)
			panic(&LoopError{Actor: a.cfg.Name, Err: m.err})
		}
	case Fault:
		if f, ok := a.loop.(interface{ InjectFault(error) }); ok {
			f.InjectFault(m.Err)
		}
	case *actor.Started:
		a.start(c)
	case *actor.Restarting:
		a.stop(0)
	case *actor.Stopping:
		a.stop(a.cfg.CloseLinger.Get())
	case *actor.Stopped, *actor.Restart:
	default:
		if a.cfg.Receive != nil {
			a.cfg.Receive(a.loop, m)
		}
	}
}

func (a *socketActor) start(c actor.Context) {
	self, root := c.Self(), c.ActorSystem().Root
	start := &loopStart{}
	failed := func(err error) { root.Send(self, &loopFailed{start: start, err: err}) }
	loop, err := a.cfg.Start(failed)
	if err != nil {
		panic(&LoopError{Actor: a.cfg.Name, Err: err})
	}
	a.loop, a.started = loop, start
}

func (a *socketActor) stop(linger time.Duration) {
	if a.loop == nil {
		return
	}
	if linger > 0 {
		a.loop.StopLinger(linger)
	} else {
		a.loop.Stop()
	}
	a.loop = nil
	if a.cfg.Stopped != nil {
		a.cfg.Stopped()
	}
}
