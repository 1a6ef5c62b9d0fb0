package relay

import (
	"fmt"

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

// Restarts returns how often the named actor (ActorPoller, ActorSender, ...)
// has been restarted by its supervisor.
func (n *Node) Restarts(actor string) int { return n.monitor.Restarts(actor) }

// Actors returns the names of the node's actors that KillActor accepts.
func (n *Node) Actors() []string {
	names := []string{ActorPoller, ActorDispatcher, ActorSender, ActorReplyWaiter}
	if n.subState != nil {
		names = append(names, ActorSubscriber)
	}
	return names
}

// KillActor makes the named actor fail, as a crash would: its supervisor
// restarts it (a socket actor with a new socket). For tests and chaos
// tools. It returns before the restart completes; see Restarts.
func (n *Node) KillActor(name string) error {
	pid, ok := n.pids[name]
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
