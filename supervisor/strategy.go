package supervisor

import (
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// Kind tells which children a strategy restarts when one fails.
type Kind int

const (
	// KindOneForOne restarts only the failing child.
	KindOneForOne Kind = iota
	// KindAllForOne restarts every child of the supervisor.
	KindAllForOne
)

// String returns "one-for-one" or "all-for-one".
func (k Kind) String() string {
	if k == KindAllForOne {
		return "all-for-one"
	}
	return "one-for-one"
}

// Strategy is a named supervision strategy with a restart intensity: a child
// may restart at most MaxRestarts times within Within; past that it is
// stopped and its supervisor gives up on it.
type Strategy struct {
	Kind        Kind
	MaxRestarts int
	Within      time.Duration
}

// Default is the strategy relay uses unless configured otherwise: one for
// one, at most 10 restarts within 10 seconds.
var Default = OneForOne(10, 10*time.Second)

// OneForOne restarts a failing child alone, at most maxRestarts times within
// the period within.
func OneForOne(maxRestarts int, within time.Duration) Strategy {
	return Strategy{Kind: KindOneForOne, MaxRestarts: maxRestarts, Within: within}
}

// AllForOne restarts all children when one fails, at most maxRestarts times
// within the period within.
func AllForOne(maxRestarts int, within time.Duration) Strategy {
	return Strategy{Kind: KindAllForOne, MaxRestarts: maxRestarts, Within: within}
}

// Validate reports a strategy that cannot work.
func (s Strategy) Validate() error {
	if s.MaxRestarts < 1 {
		return fmt.Errorf("supervisor: MaxRestarts must be at least 1, got %d", s.MaxRestarts)
	}
	// protoactor-go takes a time.Duration: a bare 1000 would mean 1µs.
	if s.Within < time.Millisecond {
		return fmt.Errorf("supervisor: Within must be at least 1ms, got %v", s.Within)
	}
	return nil
}

// String describes the strategy, e.g. "one-for-one(10 in 10s)".
func (s Strategy) String() string {
	return fmt.Sprintf("%s(%d in %v)", s.Kind, s.MaxRestarts, s.Within)
}

// protoactor returns the protoactor-go strategy. Every failure restarts;
// intensity decides when restarting stops.
func (s Strategy) protoactor() actor.SupervisorStrategy {
	if s.Kind == KindAllForOne {
		return actor.NewAllForOneStrategy(s.MaxRestarts, s.Within, actor.DefaultDecider)
	}
	return actor.NewOneForOneStrategy(s.MaxRestarts, s.Within, actor.DefaultDecider)
}
