package actors

import (
	"sync"

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

// SubscriberConfig is the socket actor of a Subscriber loop that follows
// state: each new loop start makes is connected and subscribed to all of
// it, and a Sync message applies what changed since. The node's
// fanout-subscriber and a local publisher proxy are such actors. The
// caller sets Counters and CloseLinger.
func SubscriberConfig(name string, state *SubState, start func(onFail func(error)) (*sockets.Subscriber, error)) *SocketConfig {
	sub := &Subscription{State: state}
	return &SocketConfig{
		Name: name,
		Start: func(onFail func(error)) (Loop, error) {
			loop, err := start(onFail)
			if err != nil {
				return nil, err
			}
			sub.Reset()
			sub.Sync(loop)
			return loop, nil
		},
		Receive: func(loop Loop, msg any) {
			if _, ok := msg.(Sync); ok && loop != nil {
				sub.Sync(loop.(*sockets.Subscriber))
			}
		},
	}
}

// Subscription keeps a fanout-subscriber's loop in line with its SubState:
// Sync applies what changed since the loop last saw it, and Reset forgets
// what the loop had (a new loop starts with nothing). Used by the
// subscriber's socket actor only (SubscriberConfig).
type Subscription struct {
	State    *SubState
	eps      map[string]bool // applied to the current loop
	prefixes map[string]bool
}

// Reset forgets what the previous loop was connected and subscribed to.
func (s *Subscription) Reset() { s.eps, s.prefixes = map[string]bool{}, map[string]bool{} }

// Sync applies the difference between the SubState and what loop has.
func (s *Subscription) Sync(loop *sockets.Subscriber) {
	if loop == nil {
		return
	}
	if s.eps == nil {
		s.Reset()
	}
	eps, prefixes := s.State.snapshot()
	connect, disconnect := missing(eps, s.eps), missing(s.eps, eps)
	sub, unsub := missing(prefixes, s.prefixes), missing(s.prefixes, prefixes)
	s.eps, s.prefixes = eps, prefixes
	loop.Update(connect, disconnect, sub, unsub)
}

// missing returns the keys of a that b lacks.
func missing(a, b map[string]bool) []string {
	var out []string
	for k := range a {
		if !b[k] {
			out = append(out, k)
		}
	}
	return out
}
