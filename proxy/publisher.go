package proxy

import (
	"context"
	"fmt"
	"time"

	"github.com/relay-dev/relay/actors"
	"github.com/relay-dev/relay/matchmaker"
	"github.com/relay-dev/relay/sockets"
)

// Names of a publisher proxy's socket actor.
const (
	// ActorPublisher owns a central proxy's frontend ROUTER and backend
	// XPUB.
	ActorPublisher = "publisher-proxy"
	// ActorLocalPublisher owns a local proxy's SUB (connected to every
	// central proxy) and the XPUB it republishes on.
	ActorLocalPublisher = "local-publisher"
)

// Publisher is a running publisher proxy (relay.WithPubSub): fanouts and
// notifications go from a publisher through one proxy to every
// subscriber of the topic, instead of one message per receiver.
//
//	publisher DEALER ──> proxy ROUTER (front) ── XPUB (back) ──> SUB of each node
//	                         └── ACK (WithAck) back to the publisher
//
// A central proxy registers under PublishersKey as "FRONT|BACK|ack" (or
// "noack") and publishes each record under its subscription prefix
// (FanoutPrefix, NotifyPrefix); with WithAck it acknowledges each record it
// published, and answers "NoSubscribers" for one nobody would get. A local
// proxy (WithLocal, two-level fanout) subscribes to every central one and
// republishes on its host; it registers under LocalPublishersKey(host),
// and the nodes of that host connect to it instead.
type Publisher struct {
	*base
	subs *actors.SubState // a local proxy's: the central proxies it follows
}

// StartPublisher starts a central (or, with WithLocal, a local) publisher
// proxy, supervised, and registers it with the matchmaker. Options:
//
//	WithMatchmaker(url)        where to register (default "memory://default")
//	WithAck(on)                central: acknowledge each message published (default false)
//	WithLocal(on)              a local proxy for WithHost, fed by the central ones (default false)
//	WithHost(name)             the host a local proxy serves (default os.Hostname)
//	WithBindAddress(addr)      address to bind and advertise (default 127.0.0.1)
//	WithAdvertise(addr)        address to register when it is not the bind address
//	WithPortRange(min, max)    ports to bind (default 20000-29999)
//	WithRegistrationTTL(d)     registration lifetime, renewed every third (default 30s)
//	WithSupervisor(strategy)   restart intensity of the socket loop (default supervisor.Default)
//	WithCurve(key, allow)      CURVE on both sides; WithCurveKeys in memory
//	WithLogger(l)              logger (default: discard)
//
// A bad option is an error naming it. ctx bounds the start only.
func StartPublisher(ctx context.Context, opts ...Option) (*Publisher, error) {
	o, b, err := openKind(publisherKind, opts, "proxy")
	if err != nil {
		return nil, err
	}
	p := &Publisher{base: b}
	var key matchmaker.Key
	var member string
	var follow func(context.Context)
	if o.local {
		p.subs = actors.NewSubState()
		p.subs.Subscribe("") // everything the central proxies publish
		err = b.supervise(ctx, p.localConfig(&member))
		key, follow = LocalPublishersKey(o.host), p.followCentrals
	} else {
		err = b.supervise(ctx, p.centralConfig(&member))
		key = PublishersKey
	}
	if err == nil {
		err = p.announce(ctx, key, member, follow)
	}
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("proxy: publisher: %w", err)
	}
	return p, nil
}

// publisherHWM is the high-water mark of a publisher proxy's sockets, in
// messages. A proxy publishes each record as a message of its own (a SUB
// filters whole messages by prefix), and a notification is one record per
// listener pool: a burst of as many messages as pools, written into the
// pipe of each subscriber faster than libzmq's I/O thread drains it. At
// relay's default of 32 (fit for nodes, which batch their records) the
// XPUB refused most of such a burst (EAGAIN, with XPUB_NODROP); those
// records went unacknowledged, back to their publishers' resends and some
// past their deadline (node scale, 500 nodes each listening in a pool of
// its own: 1,091 notifications lost). 4,096 holds the records of a few
// notifications to every pool of a host; a subscriber that stops reading
// still holds at most this many (~1 MiB of small records) before the
// proxy refuses what would go to it.
const publisherHWM = 4096

// publisherOptions are a publisher proxy's socket options.
func (p *Publisher) publisherOptions() sockets.Options {
	o := p.socketOptions()
	o.HWM = publisherHWM
	return o
}

// centralConfig is a central proxy's socket actor; the first loop sets
// member, "FRONT|BACK|ack" (or "noack").
func (p *Publisher) centralConfig(member *string) *actors.SocketConfig {
	cfg := sockets.ProxyConfig{Front: p.o.bind(), Back: p.o.bind(), Options: p.publisherOptions(), Prefix: prefix,
		OnDrop:    func(err error) { p.log.Warn("proxy dropped a message", "err", err) },
		OnRefused: p.refused}
	mode := "noack"
	if p.o.ack {
		cfg.Ack, cfg.Nack, mode = ackRecord, nackRecord, "ack"
	}
	start := twoPorts(&cfg.Front, &cfg.Back, func(onFail func(error)) (*sockets.Proxy, error) {
		c := cfg
		c.OnFail = onFail
		return sockets.StartProxy(p.zctx, c)
	}, func(front, back string) { *member = front + "|" + back + "|" + mode })
	return &actors.SocketConfig{Name: ActorPublisher, Start: start}
}

// localConfig is a local proxy's socket actor: a Subscriber loop that
// follows p.subs and republishes; the first loop sets member, its
// republishing endpoint.
func (p *Publisher) localConfig(member *string) *actors.SocketConfig {
	bind := p.o.bind()
	return actors.SubscriberConfig(ActorLocalPublisher, p.subs, func(onFail func(error)) (*sockets.Subscriber, error) {
		l, err := sockets.StartSubscriber(p.zctx, sockets.SubscriberConfig{
			Options: p.publisherOptions(), Republish: &bind,
			OnDrop:    func(err error) { p.log.Warn("local proxy dropped a message", "err", err) },
			OnRefused: func(err error) { p.refused(err.Error()) },
			OnFail:    onFail,
		})
		if err != nil {
			return nil, err
		}
		rebind(&bind, l.Port())
		if *member == "" {
			*member = l.Endpoint()
		}
		return l, nil
	})
}

// followCentrals keeps a local proxy subscribed to every central proxy it
// trusts: it sets them in p.subs and has the socket actor apply them. Runs
// in maintain's goroutine.
func (p *Publisher) followCentrals(ctx context.Context) {
	lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	members, err := p.mm.Lookup(lctx, PublishersKey)
	cancel()
	if err != nil {
		return
	}
	var backs []string
	for _, m := range p.admitted(members) {
		if pub, ok := ParsePublisher(m); ok {
			backs = append(backs, pub.Back)
		}
	}
	p.subs.SetEndpoints(backs)
	p.system.Root.Send(p.pid(), actors.Sync{})
}
