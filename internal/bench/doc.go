// Package bench measures relay against its baselines in one run: the rows
// and targets of the performance issue (issue 8), each measured relay
// then baseline in every round, so that the machine's noise hits both.
// `node bench` formats what Run returns.
//
//	rep, err := bench.Run(ctx, bench.DefaultConfig(), func(step string) { log.Print(step) })
//	for _, row := range rep.Rows {
//		fmt.Println(row.Name, row.Relay.Median, row.Want, row.Verdict)
//	}
//
// Baselines: raw libzmq through zmq4 (package sockets' RawRoundTrip,
// RawPipelined and RawPushPull), relay itself in another mode (notify
// direct for the publisher proxy, pipelined calls direct for the router
// proxy), and gRPC's unary p50 from ../shared/peers, given in
// Config.GRPCP50. Rows without a baseline (flood, cost, memory) are
// checked against absolute targets. Rows reads the rows from the rounds:
// values are medians over rounds, ratios the median of the per-round
// ratios with their min and max.
//
// Every relay measurement starts its own nodes in this process, on a fresh
// in-memory matchmaker, talking over tcp on 127.0.0.1 (or inproc, for the
// same-process row), and closes them before it returns. No goroutine
// outlives a call.
//
// Concurrency: the functions are safe to call from several goroutines, but
// measurements running at the same time disturb each other.
package bench
