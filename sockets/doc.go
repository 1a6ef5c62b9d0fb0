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
//     changed" descriptor) is duplicated and watched by a tiny goroutine
//     (fdWatch) that never touches the socket, only the descriptor, and
//     turns each edge into a non-blocking send on the loop's ready channel;
//   - the Outbox wakes the loop through a Go channel of capacity one, with
//     an atomic flag so that under load most pushes do not signal at all;
//   - the loop selects on both, and after every wake-up reads ZMQ_EVENTS and
//     serves its sockets until they have nothing more before it waits again
//     (the ZMQ_FD contract).
//
// Ownership is stricter than with a control socket: no ZeroMQ socket, not
// even a control pipe, is ever touched outside its loop's goroutine.
//
//	caller ── Outbox.Push ──> queue ──┐
//	                 signal ──────────┤
//	ZMQ_FD edge ── fdWatch ── ready ──┴──> loop goroutine ── socket
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
