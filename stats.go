package relay

import (
	"fmt"
	"slices"

	"github.com/relay-dev/relay/actors"
	"github.com/relay-dev/relay/supervisor"
)

// Stats counts what a node dropped or refused, and how often its actors
// restarted. Nothing relay drops goes uncounted. The counters are those of
// actors.Stats (Malformed, DroppedCasts, Resends, Refused, ...), embedded:
// st.DroppedCasts reads as before, and the wire forms (JSON, msgpack) keep
// every field at the top level.
type Stats struct {
	actors.Stats
	Restarts map[string]int // by actor name
	// MatchmakerOps and MatchmakerErrors count the matchmaker's operations
	// (register, register_many, unregister, lookup) and their failures.
	MatchmakerOps, MatchmakerErrors map[string]uint64

	// Gauges, as of the call.
	Handlers int // handlers running (at most WithMaxHandlers)
	Queued   int // requests waiting for a handler (reading pauses beyond WithHandlerQueue)
	Pending  int // calls of this node waiting for their answers
}

// Stats returns the node's counters.
func (n *Node) Stats() Stats {
	st := Stats{Stats: n.counters.Snapshot(), Restarts: map[string]int{}}
	for name := range n.pids {
		st.Restarts[name] = n.monitor.Restarts(name)
	}
	st.Handlers, st.Queued, st.Pending = n.pool.Running(), n.pool.Queued(), n.pending.Len()
	st.MatchmakerOps, st.MatchmakerErrors = n.mm.snapshot()
	return st
}

// Restarts returns how often the named actor (ActorRouter, ActorDealers, ...)
// has been restarted by its supervisor.
func (n *Node) Restarts(actor string) int { return n.monitor.Restarts(actorName(actor)) }

// Actors returns the names of the node's actors that KillActor accepts.
func (n *Node) Actors() []string {
	return append(n.socketActors(), ActorHandlers, ActorResender)
}

// KillActor makes the named actor fail, as a crash would: its supervisor
// restarts it (a socket actor with a new socket). For tests and chaos
// tools. It returns before the restart completes; see Restarts.
func (n *Node) KillActor(name string) error {
	pid, ok := n.pids[actorName(name)]
	if !ok {
		return fmt.Errorf("relay: kill actor %q: no such actor (have %v)", name, n.Actors())
	}
	select {
	case <-n.down:
		return n.downErr()
	default:
	}
	n.system.Root.Send(pid, &supervisor.Crash{Reason: "KillActor"})
	return nil
}

// InjectFault makes the loop of the named socket actor (ActorRouter,
// ActorDealers, ActorSubscriber) fail with err as a socket error would
// (actors.Fault: its sockets' next receive returns err): the loop reports
// it, counted in Stats().LoopFailures, and the actor's supervisor restarts
// it with new sockets, the path a real socket failure takes (KillActor
// crashes the actor itself instead). For tests and chaos tools. It returns
// before the restart; see Restarts.
func (n *Node) InjectFault(name string, err error) error {
	name = actorName(name)
	if !slices.Contains(n.socketActors(), name) {
		return fmt.Errorf("relay: inject fault: %q is not a socket actor of the node (have %v)", name, n.socketActors())
	}
	select {
	case <-n.down:
		return n.downErr()
	default:
	}
	n.system.Root.Send(n.pids[name], actors.Fault{Err: err})
	return nil
}

// socketActors returns the names of the node's socket actors.
func (n *Node) socketActors() []string {
	names := []string{ActorRouter, ActorDealers}
	if n.subState != nil {
		names = append(names, ActorSubscriber)
	}
	return names
}
