package relay

import (
	"context"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"github.com/relay-dev/relay/actors"
	"github.com/relay-dev/relay/curve"
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
// With CURVE, addr carries the server's key (which this node's allow-list
// admitted): the node found must hold that key.
func (n *Node) local(addr string) *Node {
	if !n.opts.inproc {
		return nil
	}
	ep, k, keyed, err := curve.SplitMember(addr)
	if err != nil {
		return nil
	}
	v, ok := locals.Load(ep)
	if !ok {
		return nil
	}
	srv := v.(*Node)
	if keyed != (srv.sec != nil) || (keyed && srv.sec.PublicKey() != k) {
		return nil
	}
	return srv
}

// viaInproc returns the inproc endpoint of the node at addr when it is of
// this process and both ends take inproc, without CURVE; else addr. (ZeroMQ
// runs no security mechanism on inproc: with CURVE, what travels by socket
// goes by TCP, where the caller is authenticated; the hand-over carries
// the caller's key itself.)
func (n *Node) viaInproc(addr string) string {
	if srv := n.local(addr); srv != nil && srv.sec == nil {
		return inprocEndpoint(srv.id)
	}
	return addr
}

// callerKey is what a node of this process hands over as its caller
// identity: its public key in Z85, as a connection's User-Id carries it
// (nil without CURVE).
func (n *Node) callerKey() []byte {
	if n.sec == nil {
		return nil
	}
	return n.sec.UserID()
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
	if err := srv.intake.Local(append([]byte(nil), rec...), n.intake.Answer, n.callerKey()); err != nil {
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
