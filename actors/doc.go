// Package actors holds relay's actors: the router (owns the node's bound
// ROUTER and receives requests), the handlers actor (runs handlers off the socket
// goroutines), the dealers actor (owns the DEALERs towards servers and receives
// their replies) and the resender (owns the table of calls waiting for a
// reply, correlated by msg_id, and fails each call at its deadline with one
// timer for all of them).
//
// The socket actors (router, dealers) own a socket loop from package sockets:
// they start it in Started, stop it in Restarting and Stopping, and fail
// (so that their supervisor restarts them) when the loop reports an error.
// State that must survive a restart (the outboxes, the resender's table
// of pending calls, the counters) is created by the node and handed to the
// actors' producers, so a restart loses no queued message and no pending
// call.
//
// A call flows as
//
//	caller ── Pending.Add ──> resender's table   (msg_id → call, deadline)
//	caller ── Outbox ──> dealers loop ── DEALER ──> server ROUTER ── router loop
//	router ──*Inbound──> handlers ── handler goroutine ── Outbox ──> router loop
//	dealers loop <── DEALER ── reply ── Pending.Complete ──> caller
//
// The reply path takes the call from the resender's table in the
// dealers' loop rather than through the resender's mailbox: one
// goroutine hop fewer per call (see docs/PERFORMANCE.md). The resender
// actor expires calls and fails them all when it stops.
//
// Concurrency: actor state is touched only in Receive; callbacks from socket
// loops only send actor messages, touch atomics, or use Pending (which locks).
package actors
