// Package proxy runs relay's proxies: the router proxy (calls and casts of
// nodes in router-proxy mode, relay.WithRouterProxy) and the publisher
// proxies, central or local (fanouts and notifications of nodes in pub/sub
// mode, relay.WithPubSub). `node proxy` runs one per process; a program
// can run them in process:
//
//	r, err := proxy.StartRouter(ctx, proxy.WithMatchmaker("redis://127.0.0.1:6379"))
//	if err != nil { ... }
//	defer r.Close()
//	select {
//	case err := <-r.Failed(): // beyond the restart intensity: restart the process
//	case <-done:
//	}
//
// Each proxy owns one socket loop (package sockets), owned in turn by one
// socket actor (actors.SocketProps) under a supervisor, as a node's loops
// are: a loop that fails is restarted in place, on the same ports, while
// the registration stays; only beyond the restart intensity
// (WithSupervisor) does the proxy unregister and report ErrFailed on
// Failed. What a restarted loop's sockets held is lost: senders with acks
// resend it through another proxy.
//
// The package also holds what nodes and proxies agree on: the keys the
// proxies register under, the forms of their registrations, the HELLO of a
// server, and the subscription prefixes (members.go).
//
// Concurrency: a proxy's methods are safe for concurrent use; Close is
// idempotent and blocks until the loop, the renewal and the matchmaker
// watch have stopped. Every goroutine of a proxy is tracked and joined at
// Close (or Crash). The router's routing table belongs to its loop's
// goroutine.
package proxy
