package actors

import (
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/relay-dev/relay/envelope"
	"github.com/relay-dev/relay/sockets"
)

// Inbound is a request received by the poller, on its way to the dispatcher.
type Inbound struct {
	From   []byte // routing id of the connection it came in on
	Header envelope.Header
	Body   []byte
	// Via is the router proxy (backend endpoint) a request came through,
	// in router-proxy mode: its answers go back the same way. Empty when it
	// came straight to the poller.
	Via string
}

// PollerConfig configures the poller. The same value is used by every
// incarnation; Port is filled in by the first bind so restarts rebind it.
type PollerConfig struct {
	Context    *sockets.Context
	Outbox     *sockets.Outbox // replies to send
	Router     sockets.RouterConfig
	Dispatcher *actor.PID
	Counters   *Counters
	Log        *slog.Logger
	// CloseLinger is how long the socket may still deliver what it holds
	// when the node closes (not on restarts).
	CloseLinger *Linger
	// Bound is called with the endpoint after each successful bind.
	Bound func(endpoint string)
}

// PollerProps builds the poller.
func PollerProps(cfg *PollerConfig) *actor.Props {
	malformed := &throttledLog{log: cfg.Log, interval: time.Second}
	return props(func() actor.Actor { return &poller{cfg: cfg, malformed: malformed} })
}

// poller owns the node's bound ROUTER through a sockets.Router loop.
type poller struct {
	cfg       *PollerConfig
	loop      *sockets.Router
	malformed *throttledLog
}

func (p *poller) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *loopFailed:
		if m.loop == p.loop {
			p.cfg.Counters.LoopFailures.Add(1)
			panic(&LoopError{Actor: "poller", Err: m.err})
		}
	case *actor.Started:
		p.start(c)
	case *actor.Restarting:
		if p.loop != nil {
			p.loop.Stop()
			p.loop = nil
		}
	case *actor.Stopping:
		if p.loop != nil {
			p.loop.StopLinger(p.cfg.CloseLinger.Get())
			p.loop = nil
		}
	}
}

func (p *poller) start(c actor.Context) {
	self, root := c.Self(), c.ActorSystem().Root
	dispatcher := p.cfg.Dispatcher
	rc := p.cfg.Router
	rc.OnRecv = func(frames [][]byte) {
		from, h, body, err := envelope.ParseRouted(frames)
		if err != nil {
			p.cfg.Counters.Malformed.Add(1)
			p.malformed.Warn("malformed message dropped", "err", err, "frames", len(frames))
			return
		}
		root.Send(dispatcher, &Inbound{From: from, Header: h, Body: body})
	}
	rc.OnDrop = func(m *sockets.Message, err error) {
		p.cfg.Counters.DroppedReplies.Add(1)
		p.cfg.Log.Warn("reply dropped", "err", err)
	}
	var loop *sockets.Router
	rc.OnFail = func(err error) { root.Send(self, &loopFailed{loop: loop, err: err}) }
	loop, err := sockets.StartRouter(p.cfg.Context, p.cfg.Outbox, rc)
	if err != nil {
		panic(&LoopError{Actor: "poller", Err: err})
	}
	// A restart rebinds the same port, so clients reconnect to it.
	p.cfg.Router.Port = loop.Port()
	p.loop = loop
	if p.cfg.Bound != nil {
		p.cfg.Bound(loop.Endpoint())
	}
}
