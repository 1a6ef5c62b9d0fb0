package relay

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/relay-dev/relay/actors"
	"github.com/relay-dev/relay/curve"
	"github.com/relay-dev/relay/envelope"
	"github.com/relay-dev/relay/matchmaker"
	"github.com/relay-dev/relay/sockets"
)

// Router-proxy mode (WithRouterProxy): clients and servers connect to k
// stateless router proxies instead of to each other, so connections grow as
// k·N instead of clients × servers.
//
//	client DEALER ──> proxy ROUTER (front) │ ROUTER (back) <── server DEALER
//
// Proxies register under $relay/routers as "FRONT|BACK". A server connects a
// DEALER (identity: its node id) to every proxy's back and says HELLO (kind
// HEARTBEAT, method "hello", body: its server names) every helloEvery; a
// proxy forgets a server not heard for helloTTL. Servers register their
// targets in the matchmaker with the member "@NAME". A client picks the
// server by name itself, puts it in the header's server field, and sends to
// a proxy (round-robin); a resend goes through the next proxy to the same
// server, which handles the msg_id once. The proxy routes requests by the
// header's server, after stamping their reply_to with the client's
// connection (and, with CURVE, its key: envelope.AppendStamp); a server
// copies the request's reply_to into its REPLY, ERROR and ACK headers in
// this mode, and the proxy routes them by the stamp, so an answer goes
// back the way its request came, never where a client wrote.

const (
	helloEvery  = time.Second
	helloTTL    = 3 * helloEvery
	helloMethod = "hello"
	// CodeNoRoute is the ERROR code of a router proxy that has no
	// connection to the server a request names.
	CodeNoRoute = actors.CodeNoRoute
)

var routersKey = matchmaker.Key{Exchange: relayExchange, Topic: "routers"}

// routerProxy is one registered router proxy.
type routerProxy struct{ front, back string }

// parseRouter reads "FRONT|BACK"; with CURVE the member's key goes with
// each endpoint.
func parseRouter(member string) (routerProxy, bool) {
	rest, k, keyed, err := curve.SplitMember(member)
	front, back, ok := strings.Cut(rest, "|")
	if err != nil || !ok || front == "" || back == "" {
		return routerProxy{}, false
	}
	if keyed {
		front, back = curve.WithKey(front, k), curve.WithKey(back, k)
	}
	return routerProxy{front: front, back: back}, true
}

// routers returns the registered router proxies.
func (n *Node) routers(ctx context.Context) ([]routerProxy, error) {
	members, _, err := n.routes.lookup(ctx, routersKey)
	if err != nil {
		return nil, fmt.Errorf("relay: look up router proxies: %w", err)
	}
	var rs []routerProxy
	for _, m := range members {
		if r, ok := parseRouter(m); ok {
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
	start := n.nextIndex(routersKey, len(rs))
	for i := range rs {
		fronts = append(fronts, rs[(start+i)%len(rs)].front)
	}
	return name, fronts, nil
}

// helloLoop keeps this node's DEALERs connected to every router proxy's back
// and tells the proxies which servers it hosts. Runs in its own goroutine.
func (n *Node) helloLoop() { n.everyChange(helloEvery, n.hello) }

func (n *Node) hello() {
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
		return // a client only: no connection to the proxies' backs
	}
	ctx, cancel := context.WithTimeout(n.base, time.Second)
	defer cancel()
	rs, err := n.routers(ctx)
	if err != nil {
		n.log.Warn("router proxies", "err", err)
		return
	}
	body, _ := msgpack.Marshal(names)
	for _, r := range rs {
		h := envelope.Header{Kind: envelope.KindHeartbeat, ID: envelope.NewMsgID(), Method: helloMethod,
			ReplyTo: n.id, Deadline: time.Now().Add(helloEvery).UnixNano()}
		_, _ = n.peers.TryPush(r.back, sockets.Message{Rec: h.AppendRecord(nil, body), Deadline: h.Deadline})
	}
}

// RouterProxy is a running router proxy (see WithRouterProxy).
type RouterProxy struct {
	*proxyBase
	loop *sockets.RouterProxy

	routed, refused, dropped atomic.Uint64

	// Loop goroutine only: servers by name.
	servers map[string][]*routeServer
}

type routeServer struct {
	id   string
	seen time.Time
}

// StartRouterProxy starts a router proxy and registers it with the
// matchmaker. Ack and Local of o do not apply.
func StartRouterProxy(ctx context.Context, o ProxyOptions) (*RouterProxy, error) {
	base, err := openProxy(o, "router-proxy")
	if err != nil {
		return nil, err
	}
	p := &RouterProxy{proxyBase: base, servers: map[string][]*routeServer{}}
	front := base.bind()
	back := front
	for _, fix := range []struct {
		addr string
		b    *sockets.Bind
	}{{o.Frontend, &front}, {o.Backend, &back}} {
		if fix.addr == "" {
			continue
		}
		host, port, err := net.SplitHostPort(fix.addr)
		n, perr := strconv.Atoi(port)
		if err != nil || perr != nil || n <= 0 || n > 65535 {
			p.Close()
			return nil, fmt.Errorf("relay: router proxy: endpoint %q: want HOST:PORT", fix.addr)
		}
		*fix.b = sockets.Bind{Host: host, Port: n, Retry: 2 * time.Second, Advertise: o.Advertise}
	}
	rr := 0
	var stamp []byte // the loop's; each record forwarded is a copy
	p.loop, err = sockets.StartRouterProxy(base.zctx, sockets.RouterProxyConfig{
		Front: front, Back: back, Options: base.options(),
		Request: func(from, caller []byte, v *envelope.View) ([]byte, []byte, bool) {
			server := v.Server()
			if len(server) == 0 {
				p.dropped.Add(1)
				return nil, nil, false
			}
			// Answers go back down the connection the request came in
			// on, whatever its reply_to says: stamp it, with the caller's
			// key for the server to authorize by.
			var key *[32]byte
			if base.sec != nil {
				k, ok := curve.KeyOfZ85(caller)
				if !ok {
					p.dropped.Add(1)
					return nil, nil, false
				}
				key = (*[32]byte)(&k)
			}
			live := p.live(server)
			if len(live) == 0 {
				p.refused.Add(1)
				return nil, nil, false
			}
			rr++
			p.routed.Add(1)
			to := []byte(live[rr%len(live)].id)
			stamp = envelope.AppendStamp(stamp[:0], from, to, key)
			return to, v.AppendWithReplyTo(nil, stamp), true
		},
		Refuse: func(v *envelope.View) []byte {
			e := envelope.Header{Kind: envelope.KindError, ID: v.ID(), ReplyTo: v.ReplyTo()}
			return e.AppendRecord(nil, envelope.EncodeError(CodeNoRoute, "router proxy has no connection to server "+string(v.Server())))
		},
		Backend: func(from, caller []byte, v *envelope.View) ([]byte, bool) {
			if v.Kind() == envelope.KindHeartbeat && string(v.Method()) == helloMethod {
				// With CURVE only allowed keys reach the back (ZAP): a
				// HELLO is from a key holder.
				var names []string
				if msgpack.Unmarshal(v.Body(), &names) == nil {
					p.hello(string(from), names)
				}
				return nil, false
			}
			// An answer goes to the client the stamp names, and only
			// from the server the request was routed to.
			to, server, _, err := envelope.ParseStamp(v.ReplyTo())
			if err != nil || string(server) != string(from) {
				p.dropped.Add(1)
				return nil, false
			}
			return to, true
		},
		OnDrop:    func(err error) { p.dropped.Add(1); p.log.Debug("router proxy dropped a message", "err", err) },
		OnRefused: p.proxyBase.refused,
		OnFail:    p.fail,
	})
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("relay: router proxy: %w", err)
	}
	fep, bep := p.loop.Endpoints()
	if err := p.announce(ctx, routersKey, fep+"|"+bep, nil); err != nil {
		p.Close()
		return nil, fmt.Errorf("relay: router proxy: %w", err)
	}
	return p, nil
}

// hello records that the server with backend identity id hosts names. Runs
// in the loop's goroutine.
func (p *RouterProxy) hello(id string, names []string) {
	now := time.Now()
	for _, name := range names {
		found := false
		for _, s := range p.servers[name] {
			if s.id == id {
				s.seen, found = now, true
			}
		}
		if !found {
			p.servers[name] = append(p.servers[name], &routeServer{id: id, seen: now})
		}
	}
}

// live returns the servers of name heard within helloTTL. Runs in the
// loop's goroutine.
func (p *RouterProxy) live(name []byte) []*routeServer {
	ss, ok := p.servers[string(name)]
	if !ok {
		return nil
	}
	now := time.Now()
	kept := ss[:0]
	for _, s := range ss {
		if now.Sub(s.seen) < helloTTL {
			kept = append(kept, s)
		}
	}
	if len(kept) < len(ss) {
		clear(ss[len(kept):])
		p.servers[string(name)] = kept
	}
	return kept
}

// Counts returns how many requests the proxy routed, refused (no such
// server connected) and dropped (malformed, or a peer gone).
func (p *RouterProxy) Counts() (routed, refused, dropped uint64) {
	return p.routed.Load(), p.refused.Load(), p.dropped.Load()
}

// Close unregisters the proxy and stops it. Idempotent.
func (p *RouterProxy) Close() error {
	return p.close(func() {
		if p.loop != nil {
			p.loop.StopLinger(time.Second)
		}
	})
}
