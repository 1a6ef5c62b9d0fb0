package actors

import (
	"github.com/asynkron/protoactor-go/actor"

	"github.com/relay-dev/relay/supervisor"
)

// props builds an actor's props with the middleware every relay actor has
// (supervisor.CrashMiddleware, so that tests and chaos tools can kill it).
func props(p actor.Producer) *actor.Props {
	return actor.PropsFromProducer(p, actor.WithReceiverMiddleware(supervisor.CrashMiddleware))
}

// loopFailed reports that a socket loop ended with an error.
type loopFailed struct {
	loop any
	err  error
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
