package relay

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/relay-dev/relay/actors"
	"github.com/relay-dev/relay/envelope"
	"github.com/relay-dev/relay/sockets"
	"github.com/relay-dev/relay/supervisor"
)

// Names of a node's actors, for KillActor, InjectFault and Restarts, each
// named after what it owns or does.
const (
	ActorRouter     = "router"            // owns the node's bound ROUTER
	ActorHandlers   = "handlers"          // owns the handler pool
	ActorDealers    = "dealers"           // owns the DEALERs towards servers
	ActorResender   = "resender"          // resends messages with acks; fails pending calls at close
	ActorSubscriber = "fanout-subscriber" // owns the SUB; only in pub/sub mode
)

// The names the actors had before: KillActor, InjectFault and Restarts
// still take them.
const (
	// Deprecated: ActorRouter.
	ActorPoller = ActorRouter
	// Deprecated: ActorHandlers.
	ActorDispatcher = ActorHandlers
	// Deprecated: ActorDealers.
	ActorSender = ActorDealers
	// Deprecated: ActorResender.
	ActorReplyWaiter = ActorResender
)

// formerNames maps the actors' former names to their names.
var formerNames = map[string]string{
	"poller": ActorRouter, "dispatcher": ActorHandlers, "sender": ActorDealers, "reply-waiter": ActorResender,
}

// actorName returns the name of the actor called name, now or before.
func actorName(name string) string {
	if now, ok := formerNames[name]; ok {
		return now
	}
	return name
}

// loops are the socket loops running now, for the pool to resume them when
// it has room again. Each is replaced when its actor restarts.
type loops struct {
	router  atomic.Pointer[sockets.Router]
	dealers atomic.Pointer[sockets.Dealers]
}

func (l *loops) resume() {
	if r := l.router.Load(); r != nil {
		r.Resume()
	}
	if d := l.dealers.Load(); d != nil {
		d.Resume()
	}
}

// wire makes the parts that outlive actor restarts: the handler pool, the
// intake that feeds it, the answer path and the resender.
func (n *Node) wire() {
	n.answers = &actors.Answers{Replies: n.replies, Peers: n.peers}
	n.pool = actors.NewPool(n.serve, &n.group, n.opts.maxHandlers, n.opts.handlerQueue, n.loops.resume)
	n.pool.LimitBytes(n.opts.handlerBytes)
	n.resender = actors.NewResender(n.pending, n.opts.retry, func(addr string, rec []byte, deadline int64) error {
		_, err := n.peers.TryPush(addr, sockets.Message{Rec: rec, Deadline: deadline})
		return err
	}, n.undelivered, &n.counters, n.log.With("actor", ActorResender))
	n.resender.Down, n.resender.Away = n.suspects.down, n.suspects.away
	n.intake = &actors.Intake{
		Pool: n.pool, Pending: n.pending, Answers: n.answers, Ledger: n.ledger,
		Counters: &n.counters, Log: n.log, Cancel: n.onCancel,
		ViaProxies: n.opts.routerProxy,
	}
	if n.opts.pubsub {
		n.intake.Dedup = actors.NewDedup(dedupSize, dedupTTL)
	}
	if n.sec != nil {
		n.intake.Authorize, n.intake.UserID = n.sec.Authorize, true
	}
	if f := n.opts.ackFilter; f != nil {
		n.intake.AckFilter = func(id envelope.MsgID) bool { return f(id.String()) }
	}
	n.intake.Init()
}

// socketOptions are the ZeroMQ options of every data socket of the node.
func (n *Node) socketOptions() sockets.Options {
	o := sockets.DefaultOptions()
	o.HWM = n.opts.hwm
	o.MaxMsgSize = n.opts.maxMessageSize
	o.HeartbeatIvl, o.HeartbeatTimeout = n.opts.heartbeat, n.opts.peerTimeout
	o.Curve = n.sec.Socket()
	return o
}

// spawnTree spawns
//
//	node ─┬─ server ─┬─ handlers, router (, fanout-subscriber)
//	      └─ client ─┬─ resender, dealers
//
// Every socket is owned by one socket actor (actors.SocketProps), which
// starts its loop and is restarted by its supervisor when the loop fails.
//
// bound gets the ROUTER's endpoint once it is bound, or the error of its
// first bind: a bind that failed before the node ever bound is not retried
// by restarts (another address or port is the fix), so the router then
// holds no loop and Start fails with it.
func (n *Node) spawnTree(spawned supervisor.Spawned, bound func(endpoint string, err error), giveUp supervisor.GiveUp) {
	root := n.root
	pid := func(path string) *actor.PID { return actor.NewPID(n.system.Address(), root+"/"+path) }
	n.pids = map[string]*actor.PID{
		ActorHandlers: pid("server/" + ActorHandlers),
		ActorRouter:   pid("server/" + ActorRouter),
		ActorResender: pid("client/" + ActorResender),
		ActorDealers:  pid("client/" + ActorDealers),
	}
	sopts := n.socketOptions()
	router, dealers := n.routerProps(sopts, bound), n.dealersProps(sopts)
	st := n.opts.strategy
	serverChildren := []supervisor.Child{
		{Name: ActorHandlers, Props: actors.PoolProps(n.pool)},
		{Name: ActorRouter, Props: router},
	}
	if n.subState != nil {
		n.pids[ActorSubscriber] = pid("server/" + ActorSubscriber)
		serverChildren = append(serverChildren, supervisor.Child{Name: ActorSubscriber, Props: n.subscriberProps(sopts)})
	}
	server := supervisor.Props(st, serverChildren, spawned, giveUp)
	client := supervisor.Props(st, []supervisor.Child{
		{Name: ActorResender, Props: actors.ResenderProps(actors.ResenderConfig{
			Resender: n.resender, Pending: n.pending, ErrClosed: ErrClosed,
		})},
		{Name: ActorDealers, Props: dealers},
	}, spawned, giveUp)
	tree := supervisor.Props(st, []supervisor.Child{
		{Name: "server", Props: server},
		{Name: "client", Props: client},
	}, nil, giveUp)
	n.tree, _ = n.system.Root.SpawnNamed(tree, root)
}

// socketProps builds the socket actor name, which owns the loops that
// start starts.
func (n *Node) socketProps(name string, start func(onFail func(error)) (actors.Loop, error)) *actor.Props {
	return actors.SocketProps(&actors.SocketConfig{Name: name, Counters: &n.counters, CloseLinger: &n.linger, Start: start})
}

// routerProps builds the router: the socket actor of the node's ROUTER,
// bound at the node's address (see spawnTree for bound).
func (n *Node) routerProps(sopts sockets.Options, bound func(endpoint string, err error)) *actor.Props {
	bind := sockets.Bind{Host: n.bindAt, PortMin: n.opts.portMin, PortMax: n.opts.portMax,
		Retry: 2 * time.Second, Advertise: n.opts.advertise}
	if n.opts.inproc {
		bind.Also = []string{inprocEndpoint(n.id)}
	}
	rc := sockets.RouterConfig{
		Bind:    bind,
		Options: sopts, BacklogMax: n.opts.queueSize,
		OnRecv:    n.intake.FromRouter,
		OnRefused: n.clientRefused,
		OnDropped: n.countDropped,
		OnDrop: func(m *sockets.Message, err error) {
			n.counters.DroppedReplies.Add(1)
			n.dropped.Warn("reply dropped", "err", err)
		},
	}
	return n.socketProps(ActorRouter, func(onFail func(error)) (actors.Loop, error) {
		cfg := rc
		cfg.OnFail = onFail
		r, err := sockets.StartRouter(n.zctx, n.replies, cfg)
		var be *sockets.BindError
		if errors.As(err, &be) && rc.Bind.Port == 0 {
			bound("", err) // never bound: Start fails with it
			return noLoop{}, nil
		}
		if err != nil {
			return nil, err
		}
		// A restart rebinds the same port, so clients reconnect to it.
		rc.Bind.Port = r.Port()
		n.loops.router.Store(r)
		bound(r.Endpoint(), nil)
		return r, nil
	})
}

// dealersProps builds the dealers actor: the socket actor of the node's DEALERs
// towards servers and proxies.
func (n *Node) dealersProps(sopts sockets.Options) *actor.Props {
	dc := sockets.DealersConfig{
		Options:     sopts,
		OnRecv:      n.intake.FromDealer,
		OnDropped:   n.countDropped,
		OnDrop:      n.dropMessage,
		Release:     putRecord,
		IdleTimeout: n.opts.idleTimeout,
		OnRefused:   n.peerRefused,
		OnLost:      n.peerLost,
		OnUp:        n.suspects.clear,
	}
	if n.opts.lossReports {
		dc.Track, dc.Answers = trackRecord, answers
	}
	return n.socketProps(ActorDealers, func(onFail func(error)) (actors.Loop, error) {
		cfg := dc
		cfg.OnFail = onFail
		d, err := sockets.StartDealers(n.zctx, n.peers, cfg)
		if err != nil {
			return nil, err
		}
		n.loops.dealers.Store(d)
		return d, nil
	})
}

// subscriberProps builds the fanout-subscriber: the socket actor of the
// node's SUB, connected to the publisher proxies (pub/sub mode). It applies
// the node's subscriptions to each new loop, and again at every Sync.
func (n *Node) subscriberProps(sopts sockets.Options) *actor.Props {
	cfg := actors.SubscriberConfig(ActorSubscriber, n.subState, func(onFail func(error)) (*sockets.Subscriber, error) {
		return sockets.StartSubscriber(n.zctx, sockets.SubscriberConfig{
			Options:   sopts,
			OnRecv:    n.intake.FromSubscriber,
			OnDropped: n.countDropped,
			OnDrop:    func(err error) { n.dropped.Warn("subscriber", "err", err) },
			OnRefused: func(err error) {
				n.counters.Refused.Add(1)
				n.refusals.Warn("publisher", "connection to a publisher proxy refused", "err", err)
			},
			OnFail: onFail,
		})
	})
	cfg.Counters, cfg.CloseLinger = &n.counters, &n.linger
	return actors.SocketProps(cfg)
}

// dropMessage is the dealers loop's OnDrop: a message it gave up on (its server
// unreachable past its deadline, a connection that failed, the node
// closing). A call, or a publish waiting for its ACK, fails at once unless
// it is resent anyway; a cast is counted and logged.
func (n *Node) dropMessage(addr string, m *sockets.Message, err error) {
	if len(m.Rec) < 20 {
		return
	}
	kind := envelope.Kind(m.Rec[1])
	var id envelope.MsgID
	copy(id[:], m.Rec[4:20])
	if kind == envelope.KindHeartbeat {
		n.log.Debug("hello to a router proxy dropped", "proxy", addr, "err", err)
		return
	}
	if n.resender.Resends(id) && !errors.Is(err, sockets.ErrUnauthorized) {
		return // sent again, or reported at its deadline, by the resender
	}
	if n.pending.Fail(id, err) {
		return // its owner reports it: its caller, or settled
	}
	if kind == envelope.KindCall || envelope.RecordAckWanted(m.Rec) {
		// A call whose caller has given up; or a copy of a message with
		// acks settled already (acknowledged, or reported by the
		// resender at its deadline).
		return
	}
	n.undelivered(addr, m.Rec, 0, err)
}

// trackRecord says how the dealers loop follows rec: a one-way message without
// acks is Unconfirmed (nothing but its connection says whether it
// arrived); a call or a message with acks is Answered.
func trackRecord(rec []byte) (sockets.Tracking, [16]byte) {
	var id envelope.MsgID
	copy(id[:], rec[4:20])
	switch envelope.Kind(rec[1]) {
	case envelope.KindCast, envelope.KindFanout, envelope.KindNotify:
		if !envelope.RecordAckWanted(rec) {
			return sockets.Unconfirmed, id
		}
		return sockets.Answered, id
	case envelope.KindCall:
		return sockets.Answered, id
	}
	return sockets.Untracked, id
}

// answers calls f with the msg_id of each reply, error and ack in b.
func answers(b sockets.Batch, f func(id [16]byte)) {
	var (
		frames [][]byte
		r      envelope.Reader
	)
	for {
		var ok bool
		if frames, ok = b.Next(frames[:0]); !ok {
			return
		}
		r.Reset(frames[len(frames)-1])
		for r.Next() {
			switch v := r.View(); v.Kind() {
			case envelope.KindReply, envelope.KindError, envelope.KindAck:
				f(v.ID())
			}
		}
	}
}

// countDropped counts the messages a socket loop dropped before reading
// them: malformed (too many frames) or oversized (WithMaxMessageSize).
func (n *Node) countDropped(malformed, oversized int) {
	n.counters.Malformed.Add(uint64(malformed))
	n.counters.Oversized.Add(uint64(oversized))
	if oversized > 0 {
		n.dropped.Warn("message larger than WithMaxMessageSize dropped", "limit", n.opts.maxMessageSize, "count", oversized)
	}
}

// noLoop is the router's loop when its first bind failed: nothing to stop.
type noLoop struct{}

func (noLoop) Stop()                    {}
func (noLoop) StopLinger(time.Duration) {}
