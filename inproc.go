package relay

import (
	"context"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"github.com/relay-dev/relay/actors"
)

// Nodes of one process started WithInproc reach each other without TCP: a
// call or cast is handed to the server node's handler pool directly, and
// its answer straight back to the caller's pending call (two goroutine
// hand-offs, no socket, no cgo). Fanouts and notifications, and resends,
// go over ZeroMQ's inproc transport, which such a node's ROUTER also binds.

// locals maps the endpoint of each node of this process started
// WithInproc to the node.
var locals sync.Map // endpoint -> *Node

// inprocEndpoint is the inproc name of the node with id.
func inprocEndpoint(id []byte) string { return "inproc://relay-" + hex.EncodeToString(id) }

// local returns the node of this process at addr when both it and n take
// inproc, else nil.
func (n *Node) local(addr string) *Node {
	if !n.opts.inproc {
		return nil
	}
	if v, ok := locals.Load(addr); ok {
		return v.(*Node)
	}
	return nil
}

// viaInproc returns the inproc endpoint of the node at addr when it is of
// this process and both ends take inproc; else addr.
func (n *Node) viaInproc(addr string) string {
	if srv := n.local(addr); srv != nil {
		return inprocEndpoint(srv.id)
	}
	return addr
}

// handOver gives the server node srv a copy of a request record, whose
// answers come back to n's pending calls. A full handler queue is
// ErrBackPressure.
func (n *Node) handOver(srv *Node, rec []byte) error {
	select {
	case <-srv.down:
		return srv.downErr()
	default:
	}
	if err := srv.intake.Local(append([]byte(nil), rec...), n.intake.Answer); err != nil {
		if errors.Is(err, actors.ErrFull) {
			return ErrBackPressure
		}
		return err
	}
	return nil
}

// localCall is Call to a node of this process: the request is handed over,
// the caller waits as for any call.
func (n *Node) localCall(ctx context.Context, srv *Node, c *actors.Call, ctxDeadline bool, timeout time.Duration) (actors.Result, error) {
	n.pending.Add(c)
	if err := n.handOver(srv, c.Rec); err != nil {
		n.pending.Take(c.ID)
		return actors.Result{}, err
	}
	return n.await(ctx, c, ctxDeadline, timeout), nil
}
