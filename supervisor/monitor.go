package supervisor

import (
	"fmt"
	"log/slog"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/eventstream"
)

// Event records one supervision decision about a child actor.
type Event struct {
	Time      time.Time
	Actor     string // the child's name, e.g. "router"
	Directive string // "RestartDirective", "StopDirective", ...
	Reason    string
}

// maxEvents bounds the events a Monitor keeps.
const maxEvents = 256

// Monitor logs supervision events of one actor tree of a system (the
// actors whose path starts with a root name) and counts restarts per actor
// name.
type Monitor struct {
	system *actor.ActorSystem
	sub    *eventstream.Subscription
	log    *slog.Logger
	prefix string

	// mu guards the fields below.
	mu       sync.Mutex
	restarts map[string]int
	events   []Event
	waiters  []chan struct{}
}

// NewMonitor subscribes to system's supervision events of the actors
// under root (their paths start with root + "/"); an empty root takes them
// all.
func NewMonitor(system *actor.ActorSystem, root string, log *slog.Logger) *Monitor {
	m := &Monitor{system: system, log: log, restarts: make(map[string]int)}
	if root != "" {
		m.prefix = root + "/"
	}
	m.sub = system.EventStream.Subscribe(func(evt any) {
		if se, ok := evt.(*actor.SupervisorEvent); ok && strings.HasPrefix(se.Child.Id, m.prefix) {
			m.record(se)
		}
	})
	return m
}

func (m *Monitor) record(se *actor.SupervisorEvent) {
	ev := Event{
		Time:      time.Now(),
		Actor:     path.Base(se.Child.Id),
		Directive: se.Directive.String(),
		Reason:    fmt.Sprint(se.Reason),
	}
	m.mu.Lock()
	if se.Directive == actor.RestartDirective {
		m.restarts[ev.Actor]++
	}
	n := m.restarts[ev.Actor]
	if len(m.events) == maxEvents {
		copy(m.events, m.events[1:])
		m.events = m.events[:maxEvents-1]
	}
	m.events = append(m.events, ev)
	waiters := m.waiters
	m.waiters = nil
	m.mu.Unlock()
	for _, w := range waiters {
		close(w)
	}
	m.log.Warn("actor failed", "actor", ev.Actor, "directive", ev.Directive, "restarts", n, "reason", ev.Reason)
}

// Restarts returns how often the named actor has been restarted.
func (m *Monitor) Restarts(name string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.restarts[name]
}

// Events returns the most recent supervision events, oldest first.
func (m *Monitor) Events() []Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Event(nil), m.events...)
}

// Changed returns a channel closed at the next supervision event.
func (m *Monitor) Changed() <-chan struct{} {
	ch := make(chan struct{})
	m.mu.Lock()
	m.waiters = append(m.waiters, ch)
	m.mu.Unlock()
	return ch
}

// Close unsubscribes from the event stream.
func (m *Monitor) Close() {
	m.system.EventStream.Unsubscribe(m.sub)
}
