package relay

import (
	"encoding/hex"
	"sync"
)

// inprocs maps the endpoint of each node of this process started
// WithInproc to the inproc endpoint its ROUTER also binds: a node of the
// process with the option sends to that instead.
var inprocs sync.Map // endpoint -> inproc endpoint

// inprocEndpoint is the inproc name of the node with id.
func inprocEndpoint(id []byte) string { return "inproc://relay-" + hex.EncodeToString(id) }

// viaInproc returns the inproc endpoint of the node at addr when it is of
// this process and both ends take inproc; else addr.
func (n *Node) viaInproc(addr string) string {
	if !n.opts.inproc {
		return addr
	}
	if ip, ok := inprocs.Load(addr); ok {
		return ip.(string)
	}
	return addr
}
