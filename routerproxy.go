package relay

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/relay-dev/relay/envelope"
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
// came. Notifications go as in direct mode (routerProxy embeds direct);
// a fanout needs pub/sub.
type routerProxy struct{ direct }

// start fails when no router proxy is registered, and starts the HELLOs.
func (r routerProxy) start(ctx context.Context) error {
	n := r.n
	rs, err := r.routers(ctx)
	return n.requireProxies(len(rs), err, "router", "--router", "WithRouterProxy", "servers and clients", r.helloLoop)
}

// route picks the server by name and the proxies to send through, the
// next one round-robin first.
func (r routerProxy) route(ctx context.Context, _ envelope.Kind, t Target, now, deadline time.Time) (route, error) {
	name, fronts, err := r.pick(ctx, t, now, deadline)
	if err != nil {
		return route{}, err
	}
	return route{addr: fronts[0], server: name, fronts: fronts}, nil
}

func (routerProxy) fanout(_ context.Context, t Target, _ string, _ any, _ time.Time, _ Header) error {
	return fmt.Errorf("%w: fanout in router-proxy mode needs WithPubSub (publisher proxies): %s", ErrBadTarget, t)
}

// member is "@" and the server's name: clients reach it through proxies,
// whose keys they check.
func (routerProxy) member(s *Server) string { return "@" + s.target.Server }

// serving says HELLO to the proxies before s registers.
func (r routerProxy) serving(*Server) { r.helloFirst() }

// routers returns the registered router proxies.
func (r routerProxy) routers(ctx context.Context) ([]proxy.RouterMember, error) {
	members, _, err := r.n.routes.lookup(ctx, proxy.RoutersKey)
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

// pick chooses the server (by name) and the proxies to send through.
func (r routerProxy) pick(ctx context.Context, t Target, now, deadline time.Time) (name string, fronts []string, err error) {
	n := r.n
	members, err := n.discover(ctx, t, now, deadline)
	if err != nil {
		return "", nil, err
	}
	names, err := serverNames(t, members)
	if err != nil {
		return "", nil, err
	}
	name = names[n.nextIndex(t.key(), len(names))]
	rs, err := r.routers(ctx)
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

// serverNames returns the names of t's servers in router-proxy mode (their
// registrations "@NAME"). When there is none it says that the servers run
// in direct mode and which option to change (ErrModeMismatch).
func serverNames(t Target, members []string) ([]string, error) {
	var names []string
	for _, m := range members {
		if strings.HasPrefix(m, "@") {
			names = append(names, m[1:])
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%w: %s is served directly (registered at %s), and this node sends through router proxies: turn WithRouterProxy off for this node, or on for its servers",
			ErrModeMismatch, t, members[0])
	}
	return names, nil
}

// helloLoop keeps this node's DEALERs connected to every router proxy's back
// and tells the proxies which servers it hosts. Runs in its own goroutine.
func (r routerProxy) helloLoop() { r.n.everyChange(proxy.HelloEvery, r.hello) }

func (r routerProxy) hello() { r.helloPeers() }

// helloPeers says HELLO to every router proxy and returns the queues it
// pushed them on.
func (r routerProxy) helloPeers() []*sockets.Peer {
	n := r.n
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
	rs, err := r.routers(ctx)
	if err != nil {
		n.log.Warn("router proxies", "err", err)
		return nil
	}
	var peers []*sockets.Peer
	for _, rp := range rs {
		rec, deadline := proxy.Hello(n.id, names)
		if p, err := n.peers.TryPush(rp.Back, sockets.Message{Rec: rec, Deadline: deadline}); err == nil {
			peers = append(peers, p)
		}
	}
	return peers
}

// helloFirst says HELLO to the router proxies and waits, up to helloWait,
// until the HELLOs are on their way (handed to connected sockets), so that
// the proxies know a server's name before clients can find it in the
// matchmaker (they would answer its first calls NoRoute).
func (r routerProxy) helloFirst() {
	peers := r.helloPeers()
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
