// Package sockets is the only package of relay that imports ZeroMQ
// (github.com/pebbe/zmq4). It gives the actors socket loops that follow one
// rule: every socket is created, used and closed by exactly one goroutine.
//
// A loop (Router for the node's bound ROUTER, Dealers for the DEALERs towards
// servers) runs in its own goroutine, started by the actor that owns it.
// Other goroutines hand it work through an Outbox, a bounded queue: Push puts
// a message in the queue and, when the loop may be asleep, wakes it. Inbound
// messages are handed out through callbacks that run in the loop's goroutine
// and must not block.
//
// # Waiting without a control socket
//
// DESIGN.md describes the zactor pattern: the loop blocks in zmq_poll on its
// sockets and on an inproc PAIR control socket that other goroutines write
// to. relay's first version did exactly that, and measured it (see
// docs/PERFORMANCE.md): a goroutine blocked in zmq_poll sits in cgo on an OS
// thread, every wake-up went caller → actor → control socket → loop, and a
// sequential call cost ~450 µs against ~90 µs for raw libzmq. So a loop now
// waits in Go's netpoller instead:
//
//   - each socket's ZMQ_FD (libzmq's edge-triggered "events may have
//     changed" descriptor) is in an epoll instance of the loop's, which the
//     loop's goroutine waits on in Go's netpoller (poller.go);
//   - the Outbox (or Peers) wakes the loop with one write to an eventfd in
//     the same epoll instance, made only when the loop declared itself
//     asleep, so that under load most pushes do not signal at all;
//   - after every wake-up the loop serves its sockets until they have
//     nothing more before it waits again (the ZMQ_FD contract).
//
// Every loop has the same skeleton (loop.go): start runs its body in its
// goroutine, handle.serve alternates the loop's turn (its state and steps
// in a struct of its own) with sleeps in the poller.
//
// Ownership is stricter than with a control socket: no ZeroMQ socket, not
// even a control pipe, is ever touched outside its loop's goroutine.
//
//	caller ── Outbox.Push ──> queue ──┐
//	          eventfd write ──────────┤
//	ZMQ_FD edge ──────────── epoll ───┴──> loop goroutine ── socket
//
// A loop that fails (a socket error, a panic) reports it through OnFail and
// exits, closing its sockets with linger 0; its actor then fails and is
// restarted by its supervisor, which starts a fresh loop. Messages a loop
// held but had not sent go back to the Outbox for the next loop.
//
// Messages a loop cannot send (a peer that stays unreachable, a deadline
// that passes first, a full backlog) are handed to OnDrop with a reason;
// nothing is dropped without a callback.
package sockets
