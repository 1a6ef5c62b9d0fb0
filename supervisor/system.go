package supervisor

import (
	"context"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

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
