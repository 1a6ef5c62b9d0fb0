package supervisor

import (
	"fmt"

	"github.com/asynkron/protoactor-go/actor"
)

// Crash makes the relay actor that receives it fail, as if its code had
// panicked, so that its supervisor restarts it. Tests and chaos tools send
// it to kill a named actor of a running node.
type Crash struct {
	Reason string
}

// CrashError is the failure reason of an actor killed by a Crash message.
type CrashError struct {
	Reason string
}

func (e *CrashError) Error() string { return fmt.Sprintf("supervisor: killed: %s", e.Reason) }

// CrashMiddleware makes an actor fail when it receives a *Crash message.
// Every relay actor is built with it.
func CrashMiddleware(next actor.ReceiverFunc) actor.ReceiverFunc {
	return func(c actor.ReceiverContext, env *actor.MessageEnvelope) {
		if cr, ok := env.Message.(*Crash); ok {
			panic(&CrashError{Reason: cr.Reason})
		}
		next(c, env)
	}
}
