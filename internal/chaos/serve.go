package chaos

import (
	"context"
	"fmt"
	"time"

	"github.com/relay-dev/relay"
)

// What a server started by the harness (`node serve --journal FILE`)
// serves besides the demo endpoint.
const (
	// MethodApply journals the request's Op: a record when the handler
	// starts, then Op.Work of work, then a record that it applied it; it
	// answers the Op's key. Calls, casts and fanouts use it.
	MethodApply = "chaos_apply"
	// MethodKill makes an actor of the serving node fail (Node.KillActor);
	// its argument is the actor's name.
	MethodKill = "chaos_kill"
	// NotifyTopic is the notification topic the servers listen to, in one
	// listener pool (NotifyPool): each notification is applied by one of
	// them, as MethodApply would.
	NotifyTopic = "chaos-events"
	// NotifyPool is the servers' listener pool.
	NotifyPool = "chaos"
)

// Op is the argument of MethodApply and the payload of a notification:
// every message of the harness carries a key of its own.
type Op struct {
	Key  string        `msgpack:"key"`
	Work time.Duration `msgpack:"work"` // how long the handler works between its two records
}

// Endpoint is the harness's side of a server: it applies Ops into a
// journal and kills actors on request.
type Endpoint struct {
	journal *Journal
}

// Serve installs MethodApply and MethodKill on srv, a server of node, and
// listens to NotifyTopic in NotifyPool; what they apply is appended to the
// journal at journalPath. Close the Endpoint after the node: Node.Close
// lets the handlers in flight finish.
func Serve(node *relay.Node, srv *relay.Server, journalPath string) (*Endpoint, error) {
	j, err := OpenJournal(journalPath)
	if err != nil {
		return nil, err
	}
	e := &Endpoint{journal: j}
	srv.Handle(MethodApply, func(ctx context.Context, r *relay.Request) (any, error) {
		var op Op
		if err := r.Decode(&op); err != nil {
			return nil, err
		}
		return op.Key, e.apply(op, r.ID)
	})
	srv.Handle(MethodKill, func(_ context.Context, r *relay.Request) (any, error) {
		var actor string
		if err := r.Decode(&actor); err != nil {
			return nil, err
		}
		return nil, node.KillActor(actor)
	})
	_, err = node.Listen([]string{NotifyTopic}, NotifyPool, func(_ context.Context, d *relay.Delivery) error {
		var op Op
		if err := d.Decode(&op); err != nil {
			return err
		}
		return e.apply(op, d.ID)
	})
	if err != nil {
		j.Close()
		return nil, fmt.Errorf("chaos: listen to %s: %w", NotifyTopic, err)
	}
	return e, nil
}

// apply journals op as started, works for op.Work, and journals it as
// applied. The work ignores the request's deadline: a handler that started
// finishes unless its process dies.
func (e *Endpoint) apply(op Op, msgID string) error {
	if err := e.journal.Append(recStarted, op.Key, msgID); err != nil {
		return err
	}
	if op.Work > 0 {
		t := time.NewTimer(op.Work)
		<-t.C
	}
	return e.journal.Append(recApplied, op.Key, msgID)
}

// Close closes the journal.
func (e *Endpoint) Close() error { return e.journal.Close() }
