package actors

import (
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/relay-dev/relay/supervisor"
)

// props builds an actor's props with the middleware every relay actor has
// (supervisor.CrashMiddleware, so that tests and chaos tools can kill it).
func props(p actor.Producer) *actor.Props {
	return actor.PropsFromProducer(p, actor.WithReceiverMiddleware(supervisor.CrashMiddleware))
}

// loopFailed reports that a socket loop ended with an error; start names
// the loop's start.
type loopFailed struct {
	start *loopStart
	err   error
}

// LoopError is the failure reason of a socket actor whose loop failed.
type LoopError struct {
	Actor string
	Err   error
}

func (e *LoopError) Error() string {
	return "actors: " + e.Actor + " socket loop failed: " + e.Err.Error()
}
func (e *LoopError) Unwrap() error { return e.Err }

// Linger is a duration set by the node before it stops its actors and read
// by them while stopping. The zero value is 0. Safe for concurrent use.
type Linger struct{ ns atomic.Int64 }

// Set stores d.
func (l *Linger) Set(d time.Duration) { l.ns.Store(int64(d)) }

// Get returns the stored duration; 0 for a nil Linger.
func (l *Linger) Get() time.Duration {
	if l == nil {
		return 0
	}
	return time.Duration(l.ns.Load())
}
