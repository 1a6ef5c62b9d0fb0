package relay

import (
	"fmt"
	"strings"
)

// isEndpoint reports whether a registration is a server's endpoint that a
// DEALER can connect to (direct mode), as opposed to a router-proxy mode
// server's "@NAME".
func isEndpoint(member string) bool {
	return strings.HasPrefix(member, "tcp://") || strings.HasPrefix(member, "ipc://") ||
		strings.HasPrefix(member, "inproc://")
}

// inMode returns the registrations of t that this node can use in its
// topology: in direct mode the endpoints (a server in router-proxy mode
// registers "@NAME", which no DEALER can connect to), in router-proxy mode
// all of them (pickRouted takes the names). When none can be used it says
// that the servers run in the other mode and which option to change
// (ErrModeMismatch). Allocates only when some registration is left out.
func (n *Node) inMode(t Target, members []string) ([]string, error) {
	if n.opts.routerProxy {
		for _, m := range members {
			if strings.HasPrefix(m, "@") {
				return members, nil
			}
		}
		return nil, fmt.Errorf("%w: %s is served directly (registered at %s), and this node sends through router proxies: turn WithRouterProxy off for this node, or on for its servers",
			ErrModeMismatch, t, members[0])
	}
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
