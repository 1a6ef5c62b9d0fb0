package relay

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/relay-dev/relay/actors"
	"github.com/relay-dev/relay/proxy"
	"github.com/relay-dev/relay/sockets"
)

// Router-proxy mode (WithRouterProxy): clients and servers connect to k
// stateless router proxies (package proxy) instead of to each other. A
// server connects a DEALER (identity: its node id) to every proxy's back
// and says HELLO (proxy.Hello) every proxy.HelloEvery. Servers register
// their targets in the matchmaker with the member "@NAME". A client picks
// the server by name itself, puts it in the header's server field, and
// sends to a proxy (round-robin); a resend goes through the next proxy to
// the same server, which handles the msg_id once. A server copies the
// request's reply_to (the proxy's stamp) into its REPLY, ERROR and ACK
// headers in this mode, so that an answer goes back the way its request
// came.

// CodeNoRoute is the ERROR code of a router proxy that has no connection
// to the server a request names.
const CodeNoRoute = actors.CodeNoRoute

// routers returns the registered router proxies.
func (n *Node) routers(ctx context.Context) ([]proxy.RouterMember, error) {
	members, _, err := n.routes.lookup(ctx, proxy.RoutersKey)
	if err != nil {
		return nil, fmt.Errorf("relay: look up router proxies: %w", err)
	}
	var rs []proxy.RouterMember
	for _, m := range members {
		if r, ok := proxy.ParseRouter(m); ok {
			rs = append(rs, r)
		}
	}
	return rs, nil
}

// pickRouted chooses, in router-proxy mode, the server (by name) and the
// proxy to send through.
func (n *Node) pickRouted(ctx context.Context, t Target, now, deadline time.Time) (name string, fronts []string, err error) {
	members, err := n.all(ctx, t, now, deadline)
	if err != nil {
		return "", nil, err
	}
	var names []string
	for _, m := range members {
		if strings.HasPrefix(m, "@") {
			names = append(names, m[1:])
		}
	}
	if len(names) == 0 {
		return "", nil, fmt.Errorf("%w: %s (registered, but not through router proxies: is the server in router-proxy mode?)", ErrNoServers, t)
	}
	name = names[n.nextIndex(t.key(), len(names))]
	rs, err := n.routers(ctx)
	if err != nil {
		return "", nil, err
	}
	if len(rs) == 0 {
		return "", nil, fmt.Errorf("%w: no router proxy registered (WithRouterProxy is on: start one with `node proxy --router`)", ErrNoServers)
	}
	start := n.nextIndex(proxy.RoutersKey, len(rs))
	for i := range rs {
		fronts = append(fronts, rs[(start+i)%len(rs)].Front)
	}
	return name, fronts, nil
}

// helloLoop keeps this node's DEALERs connected to every router proxy's back
// and tells the proxies which servers it hosts. Runs in its own goroutine.
func (n *Node) helloLoop() { n.everyChange(proxy.HelloEvery, n.hello) }

func (n *Node) hello() { n.helloPeers() }

// helloPeers says HELLO to every router proxy and returns the queues it
// pushed them on.
func (n *Node) helloPeers() []*sockets.Peer {
	servers, _ := n.registered()
	seen := map[string]bool{}
	var names []string
	for _, s := range servers {
		if !seen[s.target.Server] {
			seen[s.target.Server] = true
			names = append(names, s.target.Server)
		}
	}
	if len(names) == 0 {
		return nil // a client only: no connection to the proxies' backs
	}
	ctx, cancel := context.WithTimeout(n.base, time.Second)
	defer cancel()
	rs, err := n.routers(ctx)
	if err != nil {
		n.log.Warn("router proxies", "err", err)
		return nil
	}
	var peers []*sockets.Peer
	for _, r := range rs {
		rec, deadline := proxy.Hello(n.id, names)
		if p, err := n.peers.TryPush(r.Back, sockets.Message{Rec: rec, Deadline: deadline}); err == nil {
			peers = append(peers, p)
		}
	}
	return peers
}

// helloFirst says HELLO to the router proxies and waits, up to helloWait,
// until the HELLOs are on their way (handed to connected sockets), so that
// the proxies know a server's name before clients can find it in the
// matchmaker (they would answer its first calls NoRoute).
func (n *Node) helloFirst() {
	peers := n.helloPeers()
	end := time.Now().Add(helloWait)
	for _, p := range peers {
		for p.Unsent() > 0 && time.Now().Before(end) {
			time.Sleep(time.Millisecond)
		}
	}
}

// helloWait bounds how long Serve waits for its HELLOs in router-proxy
// mode.
const helloWait = time.Second
