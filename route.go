package relay

import (
	"context"
	"fmt"
	"time"

	"github.com/relay-dev/relay/envelope"
)

// route is where one request goes.
type route struct {
	addr   string   // the peer: a server's registered endpoint, or a router proxy's front
	via    string   // where to send to reach addr, when not addr itself (inproc)
	server string   // router-proxy mode: the server the header names
	fronts []string // router-proxy mode: every proxy's front, for resends
	// servers: a bare call with acks, direct: where to send it (first)
	// and its topic's other servers, where it fails over (failovers).
	servers []string
}

// send is the endpoint to send the request to.
func (r route) send() string {
	if r.via != "" {
		return r.via
	}
	return r.addr
}

// resendAddrs is where resends of the request go in turn: the same server
// (which handles each msg_id once; another server of the topic would not
// know it ran already), through each router proxy in turn.
func (r route) resendAddrs() []string {
	if len(r.fronts) > 0 {
		return r.fronts
	}
	if len(r.servers) > 0 {
		return r.servers
	}
	return []string{r.send()}
}

// usable checks that the node is up and that t and method can be sent.
func (n *Node) usable(t Target, method string) error {
	select {
	case <-n.down:
		return n.downErr()
	default:
	}
	if err := t.check(); err != nil {
		return err
	}
	if method == "" {
		return fmt.Errorf("%w: empty method name for %s", ErrNoSuchMethod, t)
	}
	return nil
}

// route checks the node and the target, and asks the topology where a
// CALL or CAST goes.
func (n *Node) route(ctx context.Context, kind envelope.Kind, t Target, method string, now, deadline time.Time) (route, error) {
	if err := n.usable(t, method); err != nil {
		return route{}, err
	}
	return n.topo.route(ctx, kind, t, now, deadline)
}
