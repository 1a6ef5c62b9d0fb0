// Package sockets is the only package of relay that imports ZeroMQ
// (github.com/pebbe/zmq4). It gives the actors socket loops that follow one
// rule: every socket is created, used and closed by exactly one goroutine.
//
// A loop (Router for the node's bound ROUTER, Dealers for the DEALERs towards
// servers) runs in its own goroutine and polls its sockets together with the
// reading end of an inproc PAIR control socket. Other goroutines hand it work
// through an Outbox, a bounded queue: Push puts a message in the queue and,
// when the loop may be asleep, calls the wake function the owning actor
// installed; the actor (the one owner of the writing end of the control
// pair) then calls Wake, which writes one byte. The loop drains the whole
// queue per wake-up, so wake-ups are rare under load.
//
//	caller ── Outbox.Push ──> queue ──────────────┐
//	   └── wake() ──> actor ── Wake() ──> ctrl ──> loop goroutine ── socket
//
// Inbound messages are handed out through callbacks that run in the loop's
// goroutine and must not block (the actors turn them into actor messages).
// A loop that fails (a socket error, a panic) reports it through OnFail and
// exits, closing its sockets with linger 0; its actor then fails and is
// restarted by its supervisor, which starts a fresh loop.
//
// Messages a loop cannot send (a peer that stays unreachable, a deadline
// that passes first, a full backlog) are handed to OnDrop with a reason;
// nothing is dropped without a callback.
package sockets
