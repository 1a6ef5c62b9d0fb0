// Package supervisor names relay's supervision strategies, builds the
// supervisor actors of a node's tree, and reports restarts.
//
// A node's tree is
//
//	node ─┬─ server ─┬─ router
//	      │          └─ handlers
//	      └─ client ─┬─ dealers
//	                 └─ resender
//
// Each inner node is a supervisor actor built by Props from a named Strategy
// (OneForOne or AllForOne with a restart intensity: at most MaxRestarts
// within Within). When a child fails more often than that, it is stopped and
// the supervisor reports it through its OnGiveUp callback instead of
// restarting it again in a loop.
//
// Any relay actor fails on purpose when it receives a *Crash message (see
// CrashMiddleware): tests and chaos tools use that to kill a named actor.
//
// Monitor subscribes to an actor system's event stream, logs every
// supervision directive and counts restarts per actor name.
//
// Concurrency: Strategy values are immutable; Monitor methods are safe for
// concurrent use.
package supervisor
