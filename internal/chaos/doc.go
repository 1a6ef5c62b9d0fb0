// Package chaos is the engine of `node chaos`: it starts a cluster of real
// processes on loopback addresses (a redis-server, `node serve` servers
// and, by mode, router or publisher proxies), drives mixed load from
// client nodes inside this process (calls and casts with and without acks,
// fanouts, notifications), injects faults at times drawn from a seed
// (actors killed inside nodes, servers and proxies killed with SIGKILL and
// started again, Redis killed and started empty, or paused), and reports
// what became of every message.
//
//	cfg := chaos.DefaultConfig()
//	cfg.Mode, cfg.Seed, cfg.NodeBin = chaos.ModeRouter, 42, "/path/to/node"
//	rep, err := chaos.Run(ctx, cfg)
//	rep.Write(os.Stdout)
//	if v := rep.Violations(); len(v) > 0 { ... }
//
// How it counts. Every message carries a key of its own (Op). A server run
// with `node serve --journal FILE` serves MethodApply (and listens to
// NotifyTopic): its handler appends "S key msgid" to the journal, works,
// then appends "A key msgid", each line fsync'd before it goes on; each
// start of a server has a journal of its own. So the journals say, after
// any kill -9, what was applied (an A), what a crash cut short (an S
// without an A in a life that ended in a kill) and what ran twice. The
// client side records each message's outcome. Nothing is counted from a
// process's memory but the nodes' counters (Stats), which the report
// prints beside, and the messages the senders' WithUndelivered hooks
// reported, which make a loss "reported". The server side is Serve; MethodKill is how kill-actor
// reaches an actor inside a server.
//
// The faults and their times come from the seed alone (schedule); the
// load's choices are seeded too, but its timing is the machine's.
//
// Concurrency: Run blocks until the run is over and every process it
// started has been stopped; it starts goroutines of its own and joins
// them (a call that never returns is left once its node is closed, and
// reported unresolved). Endpoint and Journal are safe for concurrent use.
package chaos
