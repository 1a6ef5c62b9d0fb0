package actors

import (
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/relay-dev/relay/envelope"
	"github.com/relay-dev/relay/sockets"
)

// SenderConfig configures the sender.
type SenderConfig struct {
	Context *sockets.Context
	Outbox  *sockets.Outbox // requests to send
	Dealers sockets.DealersConfig
	Pending *Pending // the reply-waiter's table
	// Dispatcher takes requests that arrive through a router proxy.
	Dispatcher *actor.PID
	Counters   *Counters
	Log        *slog.Logger
	// CloseLinger is how long the sockets may still deliver what they hold
	// when the node closes (not on restarts).
	CloseLinger *Linger
}

// SenderProps builds the sender.
func SenderProps(cfg *SenderConfig) *actor.Props {
	malformed := &throttledLog{log: cfg.Log, interval: time.Second}
	dropped := &throttledLog{log: cfg.Log, interval: time.Second}
	return props(func() actor.Actor { return &sender{cfg: cfg, malformed: malformed, dropped: dropped} })
}

// sender owns the DEALERs towards servers through a sockets.Dealers loop and
// hands the replies they receive to the reply-waiter.
type sender struct {
	cfg       *SenderConfig
	loop      *sockets.Dealers
	malformed *throttledLog
	dropped   *throttledLog
}

func (s *sender) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *loopFailed:
		if m.loop == s.loop {
			s.cfg.Counters.LoopFailures.Add(1)
			panic(&LoopError{Actor: "sender", Err: m.err})
		}
	case *actor.Started:
		s.start(c)
	case *actor.Restarting:
		if s.loop != nil {
			s.loop.Stop()
			s.loop = nil
		}
	case *actor.Stopping:
		if s.loop != nil {
			s.loop.StopLinger(s.cfg.CloseLinger.Get())
			s.loop = nil
		}
	}
}

func (s *sender) start(c actor.Context) {
	self, root := c.Self(), c.ActorSystem().Root
	pending := s.cfg.Pending
	dc := s.cfg.Dealers
	dc.Live = live
	dc.OnRecv = func(addr string, frames [][]byte) {
		h, body, err := envelope.Parse(frames)
		if err != nil {
			s.cfg.Counters.Malformed.Add(1)
			s.malformed.Warn("malformed reply dropped", "peer", addr, "err", err)
			return
		}
		if h.Kind == envelope.KindCall || h.Kind == envelope.KindCast {
			// Router-proxy mode: a request for this node's servers.
			root.Send(s.cfg.Dispatcher, &Inbound{Header: h, Body: body, Via: addr})
			return
		}
		if h.Kind != envelope.KindReply && h.Kind != envelope.KindError && h.Kind != envelope.KindAck {
			s.cfg.Counters.UnexpectedKind.Add(1)
			s.malformed.Warn("unexpected message kind dropped", "peer", addr, "kind", h.Kind)
			return
		}
		if h.Kind == envelope.KindAck {
			pending.Ack(h.ID)
			return
		}
		pending.Complete(&h, body, s.cfg.Counters)
	}
	dc.OnDrop = func(m *sockets.Message, err error) {
		if call, ok := m.Ref.(*Call); ok {
			if call.Resent() {
				return // the reply-waiter sends it again, or expires it
			}
			pending.Fail(call, err)
			return
		}
		s.cfg.Counters.DroppedCasts.Add(1)
		s.dropped.Warn("cast dropped", "peer", m.Addr, "err", err)
	}
	var loop *sockets.Dealers
	dc.OnFail = func(err error) { root.Send(self, &loopFailed{loop: loop, err: err}) }
	loop, err := sockets.StartDealers(s.cfg.Context, s.cfg.Outbox, dc)
	if err != nil {
		panic(&LoopError{Actor: "sender", Err: err})
	}
	s.loop = loop
}
