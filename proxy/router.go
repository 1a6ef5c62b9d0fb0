package proxy

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/relay-dev/relay/actors"
	"github.com/relay-dev/relay/curve"
	"github.com/relay-dev/relay/envelope"
	"github.com/relay-dev/relay/sockets"
)

// ActorRouter is the name of a router proxy's socket actor, which owns its
// frontend and backend ROUTERs.
const ActorRouter = "router-proxy"

// Router is a running router proxy (relay.WithRouterProxy): clients and
// servers connect to k router proxies instead of to each other, so that
// connections grow as k·N instead of clients × servers.
//
//	client DEALER ──> proxy ROUTER (front) │ ROUTER (back) <── server DEALER
//
// It registers under RoutersKey as "FRONT|BACK". A server connects a
// DEALER (identity: its node id) to every proxy's back and says HELLO
// every HelloEvery; the proxy forgets a server not heard for helloTTL. It
// routes each request by the header's server name, after stamping its
// reply_to with the client's connection (and, with CURVE, its key:
// envelope.AppendStamp), and each answer by that stamp, only from the
// server it names; it forwards the records of one destination together.
type Router struct {
	*base

	routed, refusedReqs, dropped atomic.Uint64

	// The loop's goroutine only (a restart stops the old loop before the
	// new one starts): servers by name, the round-robin position, the
	// stamp being built.
	servers map[string][]*routeServer
	rr      int
	stamp   []byte
}

type routeServer struct {
	id   string
	seen time.Time
}

// StartRouter starts a router proxy, supervised, and registers it with the
// matchmaker. It returns once the proxy routes. Options:
//
//	WithMatchmaker(url)        where to register (default "memory://default")
//	WithBindAddress(addr)      address to bind and advertise (default 127.0.0.1)
//	WithAdvertise(addr)        address to register when it is not the bind address
//	WithPortRange(min, max)    ports to bind (default 20000-29999)
//	WithFrontend(hostPort)     fixed frontend for clients (default: bind address, a port of the range)
//	WithBackend(hostPort)      fixed backend for servers (default: likewise)
//	WithRegistrationTTL(d)     registration lifetime, renewed every third (default 30s)
//	WithSupervisor(strategy)   restart intensity of the socket loop (default supervisor.Default)
//	WithCurve(key, allow)      CURVE on both sides; WithCurveKeys in memory
//	WithLogger(l)              logger (default: discard)
//
// A bad option is an error naming it. ctx bounds the start only.
func StartRouter(ctx context.Context, opts ...Option) (*Router, error) {
	o, b, err := openKind(routerKind, opts, "router-proxy")
	if err != nil {
		return nil, err
	}
	p := &Router{base: b, servers: map[string][]*routeServer{}}
	cfg := sockets.RouterProxyConfig{
		Front: o.frontBind, Back: o.backBind, Options: b.socketOptions(),
		Request: p.request, Refuse: noRouteRecord, Backend: p.backend,
		OnDrop:    func(err error) { p.dropped.Add(1); p.log.Debug("router proxy dropped a message", "err", err) },
		OnRefused: b.refused,
	}
	var front, back string
	start := twoPorts(&cfg.Front, &cfg.Back, func(onFail func(error)) (*sockets.RouterProxy, error) {
		// A new loop has new connections: the servers say HELLO on them
		// again within HelloEvery (until then their requests are
		// refused, NoRoute, and resent with acks).
		clear(p.servers)
		c := cfg
		c.OnFail = onFail
		return sockets.StartRouterProxy(b.zctx, c)
	}, func(f, b string) { front, back = f, b })
	err = b.supervise(ctx, &actors.SocketConfig{Name: ActorRouter, Start: start})
	if err == nil {
		err = p.announce(ctx, RoutersKey, front+"|"+back, nil)
	}
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("proxy: router: %w", err)
	}
	return p, nil
}

// request routes a record from a client: to the backend routing id of a
// live server of the name it gives, stamped with where its answers go
// back to. Runs in the loop's goroutine.
func (p *Router) request(from, caller []byte, v *envelope.View) ([]byte, []byte, bool) {
	server := v.Server()
	if len(server) == 0 {
		p.dropped.Add(1)
		return nil, nil, false
	}
	// Answers go back down the connection the request came in on,
	// whatever its reply_to says: stamp it, with the caller's key for the
	// server to authorize by.
	var key *[32]byte
	if p.sec != nil {
		k, ok := curve.KeyOfZ85(caller)
		if !ok {
			p.dropped.Add(1)
			return nil, nil, false
		}
		key = (*[32]byte)(&k)
	}
	live := p.live(server)
	if len(live) == 0 {
		p.refusedReqs.Add(1)
		return nil, nil, false
	}
	p.rr++
	p.routed.Add(1)
	to := []byte(live[p.rr%len(live)].id)
	p.stamp = envelope.AppendStamp(p.stamp[:0], from, to, key)
	return to, v.AppendWithReplyTo(nil, p.stamp), true
}

// backend takes a record from a server: a HELLO, or an answer, which goes
// to the client its stamp names, and only from the server the request was
// routed to. Runs in the loop's goroutine.
func (p *Router) backend(from, _ []byte, v *envelope.View) ([]byte, bool) {
	if v.Kind() == envelope.KindHeartbeat && string(v.Method()) == helloMethod {
		// With CURVE only allowed keys reach the back (ZAP): a HELLO is
		// from a key holder.
		var names []string
		if msgpack.Unmarshal(v.Body(), &names) == nil {
			p.hello(string(from), names)
		}
		return nil, false
	}
	to, server, _, err := envelope.ParseStamp(v.ReplyTo())
	if err != nil || string(server) != string(from) {
		p.dropped.Add(1)
		return nil, false
	}
	return to, true
}

// hello records that the server with backend identity id hosts names. Runs
// in the loop's goroutine.
func (p *Router) hello(id string, names []string) {
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
func (p *Router) live(name []byte) []*routeServer {
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
func (p *Router) Counts() (routed, refused, dropped uint64) {
	return p.routed.Load(), p.refusedReqs.Load(), p.dropped.Load()
}
