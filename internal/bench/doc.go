// Package bench measures relay against raw libzmq in one run: sequential
// call latency, pipelined calls per second and casts per second for relay,
// and the same three patterns for raw zmq4 sockets (package sockets'
// RawRoundTrip, RawPipelined and RawPushPull). `node bench` formats what it
// returns.
//
//	rep, err := bench.Run(ctx, bench.DefaultConfig(), func(step string) { log.Print(step) })
//	for _, t := range rep.Targets() {
//		fmt.Println(t.Name, t.Met)
//	}
//
// Every relay measurement starts its own server and client nodes in this
// process, on a fresh in-memory matchmaker, talking over tcp on 127.0.0.1,
// and closes them before it returns. No goroutine outlives a call.
//
// Concurrency: the functions are safe to call from several goroutines, but
// measurements running at the same time disturb each other.
package bench
