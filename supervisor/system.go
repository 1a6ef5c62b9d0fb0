package supervisor

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// shared is the process's actor system and how many users hold it.
var shared struct {
	mu   sync.Mutex
	sys  *actor.ActorSystem
	refs int
}

// Shared returns the process's actor system, shared by every node of the
// process (an actor system costs megabytes of registry before it holds one
// actor), made with NewSystem(log) when no one holds it. Call release when
// done; the last release shuts the system down. Each user spawns its actors
// under a root name of its own.
func Shared(log *slog.Logger) (sys *actor.ActorSystem, release func()) {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.sys == nil {
		shared.sys = NewSystem(log)
	}
	shared.refs++
	sys = shared.sys
	var once sync.Once
	return sys, func() {
		once.Do(func() {
			shared.mu.Lock()
			defer shared.mu.Unlock()
			if shared.refs--; shared.refs == 0 {
				shared.sys = nil
				sys.Shutdown()
			}
		})
	}
}

// NewSystem returns a protoactor-go actor system whose own logging goes to
// log (protoactor-go would otherwise write coloured text to stdout) at
// warning level and above.
func NewSystem(log *slog.Logger) *actor.ActorSystem {
	l := slog.New(levelFilter{h: log.Handler(), min: slog.LevelWarn})
	return actor.NewActorSystem(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return l }),
		actor.WithDeadLetterRequestLogging(false),
		// Messages to actors that have just stopped (during Close) become
		// dead letters; the throttle that logs them keeps a goroutine for
		// one interval, so keep it short enough not to outlive Close.
		actor.WithDeadLetterThrottleInterval(10*time.Millisecond),
	)
}

// levelFilter drops records below min.
type levelFilter struct {
	h   slog.Handler
	min slog.Level
}

func (f levelFilter) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= f.min && f.h.Enabled(ctx, l)
}
func (f levelFilter) Handle(ctx context.Context, r slog.Record) error { return f.h.Handle(ctx, r) }
func (f levelFilter) WithAttrs(a []slog.Attr) slog.Handler {
	return levelFilter{h: f.h.WithAttrs(a), min: f.min}
}
func (f levelFilter) WithGroup(n string) slog.Handler {
	return levelFilter{h: f.h.WithGroup(n), min: f.min}
}
