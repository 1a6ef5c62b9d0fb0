package supervisor

import (
	"fmt"

	"github.com/asynkron/protoactor-go/actor"
)

// Child is one named child of a supervisor.
type Child struct {
	Name  string
	Props *actor.Props
}

// Spawned is called once per child, in the supervisor's goroutine, when the
// supervisor has spawned it.
type Spawned func(name string, pid *actor.PID)

// GiveUp is called when a child stopped for good: it exceeded its restart
// intensity, or it failed to start.
type GiveUp func(name string, err error)

// Props builds a supervisor actor: when started it spawns children with their
// names, supervises them with strategy, and reports each PID to spawned.
// A child that terminates while the supervisor is not stopping is reported to
// giveUp.
func Props(strategy Strategy, children []Child, spawned Spawned, giveUp GiveUp) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &supervisorActor{children: children, spawned: spawned, giveUp: giveUp}
	}, actor.WithSupervisor(strategy.protoactor()), actor.WithReceiverMiddleware(CrashMiddleware))
}

// Runs in its actor's goroutine only.
type supervisorActor struct {
	children []Child
	spawned  Spawned
	giveUp   GiveUp
	names    map[string]string // pid id -> child name
	stopping bool
}

func (s *supervisorActor) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *actor.Started:
		s.names = make(map[string]string, len(s.children))
		for _, ch := range s.children {
			pid, err := c.SpawnNamed(ch.Props, ch.Name)
			if err != nil {
				if s.giveUp != nil {
					s.giveUp(ch.Name, fmt.Errorf("supervisor: spawn %s: %w", ch.Name, err))
				}
				continue
			}
			s.names[pid.Id] = ch.Name
			if s.spawned != nil {
				s.spawned(ch.Name, pid)
			}
		}
	case *actor.Stopping:
		s.stopping = true
	case *actor.Terminated:
		if s.stopping {
			return
		}
		name := s.names[m.Who.Id]
		if s.giveUp != nil {
			s.giveUp(name, fmt.Errorf("supervisor: actor %s stopped after exceeding its restart intensity", name))
		}
	}
}
