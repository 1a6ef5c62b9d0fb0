// Package relay is a runtime for brokerless messaging between services over
// ZeroMQ: RPC calls (request/reply with a deadline) and casts (one-way),
// with names resolved by a matchmaker.
//
// A node is started with Start. It serves targets (Serve, then Handle per
// method) and calls or casts to targets served by other nodes (Call, Cast).
// A bare target goes to one server of its topic, round-robin; a directed
// target (Server set) to that server only.
//
//	node, err := relay.Start(ctx, relay.WithHost("host1"))
//	srv, err := node.Serve(relay.Target{Topic: "compute"})
//	srv.Handle("add", func(ctx context.Context, r *relay.Request) (any, error) {
//		var n int
//		if err := r.Decode(&n); err != nil {
//			return nil, err
//		}
//		return n + 1, nil
//	})
//	var sum int
//	err = node.Call(ctx, relay.Target{Topic: "compute"}, "add", 41, &sum)
//
// Every ZeroMQ socket is owned by one actor of the node (poller, sender),
// and the actors are supervised: a socket failure restarts its actor with a
// new socket (see packages actors, sockets and supervisor; InjectFault and
// KillActor provoke it). The topology (direct, through router proxies,
// with publisher proxies: WithRouterProxy, WithPubSub) is chosen at Start
// and changes nothing in the API. The wire format is in docs/PROTOCOL.md.
//
// Concurrency: a Node, its Servers and their methods are safe for
// concurrent use. Handlers run in their own goroutines, concurrently.
package relay
