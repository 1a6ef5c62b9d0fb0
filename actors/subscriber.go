package actors

import (
	"log/slog"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/relay-dev/relay/envelope"
	"github.com/relay-dev/relay/sockets"
)

// SubState is what the fanout-subscriber should be connected and
// subscribed to. The node owns it and changes it; the actor applies it (a
// restarted actor applies it all again). Safe for concurrent use.
type SubState struct {
	// mu guards the fields below.
	mu        sync.Mutex
	endpoints map[string]bool
	prefixes  map[string]int // prefix -> how many users want it
}

// NewSubState makes an empty state.
func NewSubState() *SubState {
	return &SubState{endpoints: make(map[string]bool), prefixes: make(map[string]int)}
}

// SetEndpoints replaces the publisher endpoints to connect to.
func (s *SubState) SetEndpoints(eps []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.endpoints)
	for _, e := range eps {
		s.endpoints[e] = true
	}
}

// Subscribe adds one use of each prefix.
func (s *SubState) Subscribe(prefixes ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range prefixes {
		s.prefixes[p]++
	}
}

// Unsubscribe removes one use of each prefix.
func (s *SubState) Unsubscribe(prefixes ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range prefixes {
		if s.prefixes[p]--; s.prefixes[p] <= 0 {
			delete(s.prefixes, p)
		}
	}
}

func (s *SubState) snapshot() (eps, prefixes map[string]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	eps = make(map[string]bool, len(s.endpoints))
	for e := range s.endpoints {
		eps[e] = true
	}
	prefixes = make(map[string]bool, len(s.prefixes))
	for p := range s.prefixes {
		prefixes[p] = true
	}
	return eps, prefixes
}

// Sync asks the fanout-subscriber to apply its SubState.
type Sync struct{}

// Dedup remembers recent msg_ids, so that a message resent through another
// proxy is handled once. Safe for concurrent use.
type Dedup struct {
	// mu guards the fields below.
	mu   sync.Mutex
	seen map[dedupKey]time.Time
	ring []dedupKey
	next int
	ttl  time.Duration
}

// dedupKey is a msg_id and the copy it is: the copies of one notification
// sent to different pools share the msg_id.
type dedupKey struct {
	id   envelope.MsgID
	copy string
}

// NewDedup remembers up to size ids, each for at most ttl.
func NewDedup(size int, ttl time.Duration) *Dedup {
	return &Dedup{seen: make(map[dedupKey]time.Time, size), ring: make([]dedupKey, size), ttl: ttl}
}

// First reports whether the copy of message id is new (and remembers it).
func (d *Dedup) First(id envelope.MsgID, copy string) bool {
	k := dedupKey{id: id, copy: copy}
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if t, ok := d.seen[k]; ok && now.Sub(t) < d.ttl {
		return false
	}
	if old := d.ring[d.next]; !old.id.IsZero() {
		delete(d.seen, old)
	}
	d.ring[d.next] = k
	d.next = (d.next + 1) % len(d.ring)
	d.seen[k] = now
	return true
}

// SubscriberConfig configures the fanout-subscriber.
type SubscriberConfig struct {
	Context    *sockets.Context
	Options    sockets.Options
	State      *SubState
	Dedup      *Dedup
	Dispatcher *actor.PID
	Counters   *Counters
	Log        *slog.Logger
}

// SubscriberProps builds the fanout-subscriber: the actor that owns the SUB
// socket connected to the publisher proxies, in pub/sub mode.
func SubscriberProps(cfg *SubscriberConfig) *actor.Props {
	malformed := &throttledLog{log: cfg.Log, interval: time.Second}
	return props(func() actor.Actor { return &subscriber{cfg: cfg, malformed: malformed} })
}

type subscriber struct {
	cfg       *SubscriberConfig
	loop      *sockets.Subscriber
	eps       map[string]bool // applied to this incarnation's loop
	prefixes  map[string]bool
	malformed *throttledLog
}

func (s *subscriber) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case Sync:
		s.sync()
	case *loopFailed:
		if m.loop == s.loop {
			s.cfg.Counters.LoopFailures.Add(1)
			panic(&LoopError{Actor: "fanout-subscriber", Err: m.err})
		}
	case *actor.Started:
		s.start(c)
	case *actor.Restarting, *actor.Stopping:
		if s.loop != nil {
			s.loop.Stop()
			s.loop = nil
		}
	}
}

func (s *subscriber) start(c actor.Context) {
	self, root := c.Self(), c.ActorSystem().Root
	dispatcher := s.cfg.Dispatcher
	var loop *sockets.Subscriber
	loop, err := sockets.StartSubscriber(s.cfg.Context, sockets.SubscriberConfig{
		Options: s.cfg.Options,
		OnRecv: func(frames [][]byte) {
			if len(frames) != 3 {
				s.cfg.Counters.Malformed.Add(1)
				s.malformed.Warn("malformed published message dropped", "frames", len(frames))
				return
			}
			h, err := envelope.Decode(frames[1])
			if err != nil {
				s.cfg.Counters.Malformed.Add(1)
				s.malformed.Warn("malformed published message dropped", "err", err)
				return
			}
			if !s.cfg.Dedup.First(h.ID, h.Target.Server) {
				s.cfg.Counters.Duplicates.Add(1)
				return
			}
			root.Send(dispatcher, &Inbound{Header: h, Body: frames[2]})
		},
		OnDrop: func(err error) { s.cfg.Log.Warn("subscriber", "err", err) },
		OnFail: func(err error) { root.Send(self, &loopFailed{loop: loop, err: err}) },
	})
	if err != nil {
		panic(&LoopError{Actor: "fanout-subscriber", Err: err})
	}
	s.loop = loop
	s.eps, s.prefixes = map[string]bool{}, map[string]bool{}
	s.sync()
}

// sync applies the difference between the SubState and what this loop has.
func (s *subscriber) sync() {
	if s.loop == nil {
		return
	}
	eps, prefixes := s.cfg.State.snapshot()
	var connect, disconnect, sub, unsub []string
	for e := range eps {
		if !s.eps[e] {
			connect = append(connect, e)
		}
	}
	for e := range s.eps {
		if !eps[e] {
			disconnect = append(disconnect, e)
		}
	}
	for p := range prefixes {
		if !s.prefixes[p] {
			sub = append(sub, p)
		}
	}
	for p := range s.prefixes {
		if !prefixes[p] {
			unsub = append(unsub, p)
		}
	}
	s.eps, s.prefixes = eps, prefixes
	s.loop.Update(connect, disconnect, sub, unsub)
}
