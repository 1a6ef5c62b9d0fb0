// Package actors holds relay's actors: the poller (owns the node's bound
// ROUTER and receives requests), the dispatcher (runs handlers off the socket
// goroutines), the sender (owns the DEALERs towards servers and receives
// their replies) and the reply-waiter (correlates replies with calls by
// msg_id and fails each call at its deadline: it is the per-call timeout
// owner, with one timer for all calls).
//
// The socket actors (poller, sender) own a socket loop from package sockets:
// they start it in Started, stop it in Restarting and Stopping, and fail
// (so that their supervisor restarts them) when the loop reports an error.
// State that must survive a restart (the outboxes, the reply-waiter's table
// of pending calls, the counters) is created by the node and handed to the
// actors' producers, so a restart loses no queued message and no pending
// call.
//
// A call flows as
//
//	caller ──*Call──> reply-waiter            (registers msg_id, deadline)
//	caller ──Outbox──> sender ── DEALER ──> server ROUTER ── poller
//	poller ──*Inbound──> dispatcher ── handler goroutine ──Outbox──> poller
//	sender <── DEALER ── reply;  sender ──*Reply──> reply-waiter ──> caller
//
// Concurrency: actor state is touched only in Receive; callbacks from socket
// loops only send actor messages or touch atomics.
package actors
