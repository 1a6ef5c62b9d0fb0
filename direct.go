package relay

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/relay-dev/relay/envelope"
)

// direct is the default topology: every node binds a ROUTER and registers
// its endpoint; a request goes to the endpoint of the server picked
// (round-robin among those registered for its target, a suspect one
// last), a fanout to every server of its topic, a notification to the
// chosen listener of each pool, each over a DEALER of the node's towards
// that endpoint (or handed over in the process, WithInproc).
type direct struct{ n *Node }

func (direct) start(context.Context) error { return nil }

func (d direct) route(ctx context.Context, kind envelope.Kind, t Target, now, deadline time.Time) (route, error) {
	n := d.n
	addr, addrs, err := d.pick(ctx, t, now, deadline)
	if err != nil {
		return route{}, err
	}
	r := route{addr: addr, via: n.viaInproc(addr)}
	if kind == envelope.KindCall && n.opts.acks && t.Server == "" {
		r.servers = n.failovers(r.send(), addrs)
	}
	return r, nil
}

// pick returns the address of the server to send to: the next one
// round-robin among those registered for t. When none is registered it waits
// for one up to the discovery wait (or the deadline, if sooner).
// It returns the addresses it picked from too.
func (d direct) pick(ctx context.Context, t Target, now, deadline time.Time) (string, []string, error) {
	addrs, err := d.servers(ctx, t, now, deadline)
	if err != nil {
		return "", nil, err
	}
	n := d.n
	addrs = n.suspects.filter(addrs) // a server that failed lately goes last
	return addrs[n.nextIndex(t.key(), len(addrs))], addrs, nil
}

// servers returns the endpoints of t's servers (see Node.discover and
// endpoints).
func (d direct) servers(ctx context.Context, t Target, now, deadline time.Time) ([]string, error) {
	members, err := d.n.discover(ctx, t, now, deadline)
	if err != nil {
		return nil, err
	}
	return endpoints(t, members)
}

// fanout sends one FANOUT message, with one msg_id and one encoding, to
// every server registered for t's topic.
func (d direct) fanout(ctx context.Context, t Target, method string, args any, deadline time.Time, headers Header) error {
	n := d.n
	_, rec, err := n.fanoutRecord(t, method, args, deadline, headers)
	if err != nil {
		return err
	}
	addrs, err := d.servers(ctx, t, time.Now(), deadline)
	if err != nil {
		return err
	}
	for _, addr := range addrs {
		if err := n.push(ctx, n.viaInproc(addr), rec, deadline); err != nil {
			return fmt.Errorf("%w: fanout %s on %s to %s", err, method, t, addr)
		}
	}
	return nil
}

func (d direct) notify(ctx context.Context, h *envelope.Header, body []byte, addr string, deadline time.Time, headers Header) error {
	n := d.n
	rec, err := notifyRecord(h, body, headers)
	if err != nil {
		return err
	}
	if err := n.push(ctx, n.viaInproc(addr), rec, deadline); err != nil {
		return fmt.Errorf("%w: notify %s to pool %s", err, h.Target.Topic, h.Target.Server)
	}
	return nil
}

// member is the server's node's address (with CURVE, carrying its public
// key: curve.WithKey).
func (d direct) member(*Server) string { return d.n.sec.Member(d.n.endpoint) }

// serving checks the hosts file's entry of s, if the node uses one.
func (d direct) serving(s *Server) { d.n.checkListed(s) }

func (direct) subscribe(...string)   {}
func (direct) unsubscribe(...string) {}

// isEndpoint reports whether a registration is a server's endpoint that a
// DEALER can connect to (direct mode), as opposed to a router-proxy mode
// server's "@NAME".
func isEndpoint(member string) bool {
	return strings.HasPrefix(member, "tcp://") || strings.HasPrefix(member, "ipc://") ||
		strings.HasPrefix(member, "inproc://")
}

// endpoints returns the registrations of t that a node in direct mode can
// use: the endpoints (a server in router-proxy mode registers "@NAME",
// which no DEALER can connect to). When there is none it says that the
// servers run in router-proxy mode and which option to change
// (ErrModeMismatch). Allocates only when some registration is left out.
func endpoints(t Target, members []string) ([]string, error) {
	bad := -1
	for i, m := range members {
		if !isEndpoint(m) {
			bad = i
			break
		}
	}
	if bad < 0 {
		return members, nil
	}
	usable := append([]string(nil), members[:bad]...)
	for _, m := range members[bad+1:] {
		if isEndpoint(m) {
			usable = append(usable, m)
		}
	}
	if len(usable) > 0 {
		return usable, nil
	}
	if m := members[bad]; strings.HasPrefix(m, "@") {
		return nil, fmt.Errorf("%w: %s is served through router proxies (registered as %s), and this node calls servers directly: turn WithRouterProxy on for this node (with a router proxy running: node proxy --router), or off for its servers",
			ErrModeMismatch, t, m)
	}
	return nil, fmt.Errorf("%w: %s is registered as %q, which is not an endpoint (tcp://, ipc:// or inproc://) nor a router-proxy name (@NAME)",
		ErrNoServers, t, members[bad])
}
