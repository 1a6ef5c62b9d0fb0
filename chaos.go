package relay

import (
	"fmt"

	"github.com/relay-dev/relay/supervisor"
)

// Stats counts what a node dropped or refused, and how often its actors
// restarted. Nothing relay drops goes uncounted.
type Stats struct {
	Malformed       uint64         // inbound messages dropped as malformed
	UnknownVersion  uint64         // inbound messages dropped: a protocol version this node does not speak
	Oversized       uint64         // inbound messages dropped: larger than WithMaxMessageSize
	UnexpectedKind  uint64         // messages of a kind the receiver does not take
	ExpiredRequests uint64         // requests skipped: their deadline had passed on arrival
	DroppedReplies  uint64         // replies that could not be delivered to their caller
	DroppedCasts    uint64         // casts that could not be sent
	LateReplies     uint64         // replies that came after their call had ended
	HandlerPanics   uint64         // handler panics, returned to callers as RemoteError
	FailedCasts     uint64         // casts, fanouts and notifications whose handler failed or found no method or listener (logged)
	Duplicates      uint64         // messages received again (resent) and handled once
	Resends         uint64         // messages sent again for want of an ACK or a reply
	Failovers       uint64         // calls with acks (bare targets) resent to another server of the topic, theirs gone
	LoopFailures    uint64         // socket loops that failed (their actor restarted)
	Cancelled       uint64         // calls cancelled by their caller while their handler ran (no answer sent)
	AcksSent        uint64         // ACKs this node's servers sent
	AcksReceived    uint64         // ACKs this node received for its messages
	Refused         uint64         // connections refused at their handshake (CURVE, ZAP), either side, and requests from keys no longer allowed (logged)
	Untrusted       uint64         // registrations not used: no CURVE key, a key not on the allow-list, or a key where this node has none (logged)
	StrayReplies    uint64         // answers that came on another connection than their call went out on (forged or misrouted), dropped
	Restarts        map[string]int // by actor name
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
	s := n.counters.Snapshot()
	st := Stats{
		Malformed: s.Malformed, UnknownVersion: s.UnknownVersion, Oversized: s.Oversized, UnexpectedKind: s.UnexpectedKind, ExpiredRequests: s.ExpiredRequests,
		DroppedReplies: s.DroppedReplies, DroppedCasts: s.DroppedCasts, LateReplies: s.LateReplies,
		HandlerPanics: s.HandlerPanics, FailedCasts: s.FailedCasts, Duplicates: s.Duplicates, Resends: s.Resends, Failovers: s.Failovers, LoopFailures: s.LoopFailures, Cancelled: s.Cancelled, AcksSent: s.AcksSent, AcksReceived: s.AcksReceived,
		Refused: s.Refused, Untrusted: s.Untrusted, StrayReplies: s.StrayReplies, Restarts: map[string]int{},
	}
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
