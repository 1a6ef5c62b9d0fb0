package relay

import (
	"context"
	"fmt"
	"time"

	"github.com/relay-dev/relay/actors"
	"github.com/relay-dev/relay/envelope"
	"github.com/relay-dev/relay/matchmaker"
)

// Topologies. A node reaches servers and listeners in one of three ways
// (DESIGN.md), chosen once by Start (newTopology, from WithRouterProxy
// and WithPubSub) and kept in Node.topo; nothing on the path of a message
// asks the options again:
//
//   - direct (direct.go, the default): a request goes straight to its
//     server's registered endpoint (one DEALER per server); a fanout and a
//     notification are one message per receiver.
//   - router proxy (routerproxy.go): a request names its server in its
//     header and goes through a router proxy; servers register "@NAME".
//     Notifications go as in direct mode; a fanout needs pub/sub.
//   - pub/sub (pubsub.go): fanouts and notifications go through publisher
//     proxies; calls and casts go the way of the topology it wraps (direct
//     or router proxy).
//
// So the path of a call is a straight line: Node.Call → call → route (the
// node's and the target's checks, then topology.route: where it goes) →
// push (the sender's queue). The implementations are values holding the
// node: a method call through the interface allocates nothing and hands
// off to no goroutine.
type topology interface {
	// start checks, as Start ends, that the proxies the topology needs are
	// registered, and starts the goroutines it keeps (HELLOs, the
	// publishers' watch).
	start(ctx context.Context) error
	// route picks where a CALL or CAST to t goes (t and the node checked).
	route(ctx context.Context, kind envelope.Kind, t Target, now, deadline time.Time) (route, error)
	// fanout sends one FANOUT of method and args, with headers (nil for
	// none), to every server of t's topic (t checked, t.Server empty).
	fanout(ctx context.Context, t Target, method string, args any, deadline time.Time, headers Header) error
	// notify sends one copy of a notification, with headers (nil for
	// none), whose header h names the listeners' pool (Target.Server), to
	// that pool's listener at addr.
	notify(ctx context.Context, h *envelope.Header, body []byte, addr string, deadline time.Time, headers Header) error
	// member is what server s registers: where clients reach it.
	member(s *Server) string
	// serving runs when Serve adds s, before s registers.
	serving(s *Server)
	// subscribe and unsubscribe change what the node's SUB follows (pub/sub
	// only: the fanouts of the topics it serves, the notifications of its
	// listeners).
	subscribe(prefixes ...string)
	unsubscribe(prefixes ...string)
}

// newTopology returns the topology the node's options choose.
func newTopology(n *Node) topology {
	var t topology = direct{n}
	if n.opts.routerProxy {
		t = routerProxy{direct{n}}
	}
	if n.opts.pubsub {
		n.subState = actors.NewSubState()
		t = &pubsub{topology: t, n: n}
	}
	return t
}

// requireProxies is how a topology's start checks for its proxies: the
// lookup of them found count (or failed with err); none is an error that
// says how to start one (`node proxy FLAG`) or which option to turn off.
// With some, it starts loop, the goroutine that follows them.
func (n *Node) requireProxies(count int, err error, kind, flag, option, agree string, loop func()) error {
	if err == nil && count == 0 {
		err = fmt.Errorf("no %s proxy is registered in %s: start one with `node proxy %s`, or turn %s off (%s must agree)",
			kind, matchmaker.Redact(n.opts.matchmaker), flag, option, agree)
	}
	if err != nil {
		return fmt.Errorf("relay: option %s: %w", option, err)
	}
	if err := n.group.Go(loop); err != nil {
		return fmt.Errorf("relay: start: %w", err)
	}
	return nil
}
