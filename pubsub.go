package relay

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/relay-dev/relay/actors"
	"github.com/relay-dev/relay/curve"
	"github.com/relay-dev/relay/envelope"
	"github.com/relay-dev/relay/matchmaker"
	"github.com/relay-dev/relay/sockets"
)

// Pub/sub mode (WithPubSub): fanouts and notifications go through publisher
// proxies instead of one message per receiver.
//
//	publisher DEALER ──> proxy ROUTER (front) ── XPUB (back) ──> SUB of each node
//	                         └── ACK (with --ack) back to the publisher
//
// Central proxies register under $relay/publishers as "FRONT|BACK|ack" (or
// "noack"). A local proxy (two-level fanout) subscribes to every central one
// and republishes on its host; it registers under
// $relay/local-publishers/HOST. A node connects its SUB to its host's local
// proxy when there is one, else to every central proxy. Subscription
// prefixes end in a zero byte, so topic "foo" never matches "foobar":
//
//	FANOUT  "F" exchange "/" topic 0x00
//	NOTIFY  "N" topic.priority 0x00 pool "|" endpoint 0x00
//
// A publisher sends each message through one proxy; with acks it waits for
// the proxy's ACK and resends through the next proxy when none comes. A
// receiver handles a msg_id once (resends are counted as duplicates).

const (
	relayExchange  = "$relay"
	dedupSize      = 1 << 16
	dedupTTL       = 5 * time.Minute
	proxyWatchTick = time.Second
)

var (
	publishersKey = matchmaker.Key{Exchange: relayExchange, Topic: "publishers"}
)

func localPublisherKey(host string) matchmaker.Key {
	return matchmaker.Key{Exchange: relayExchange, Topic: "local-publishers", Server: host}
}

func fanoutPrefix(exchange, topic string) string { return "F" + exchange + "/" + topic + "\x00" }

func notifyPrefix(topic, member string) string { return "N" + topic + "\x00" + member + "\x00" }

// proxyPrefix is the subscription prefix of a published record, from its
// header alone.
func proxyPrefix(v *envelope.View) ([]byte, bool) {
	switch v.Kind() {
	case envelope.KindFanout:
		p := append([]byte{'F'}, v.Exchange()...)
		p = append(append(p, '/'), v.Topic()...)
		return append(p, 0), true
	case envelope.KindNotify:
		p := append([]byte{'N'}, v.Topic()...)
		p = append(append(p, 0), v.Server()...)
		return append(p, 0), true
	}
	return nil, false
}

// CodeNoSubscribers is the ERROR code of a publisher proxy (with acks)
// that no subscriber would receive the message from.
const CodeNoSubscribers = actors.CodeNoSubscribers

// proxyNack answers a record no subscriber of this proxy would receive.
func proxyNack(v *envelope.View) []byte {
	e := envelope.Header{Kind: envelope.KindError, ID: v.ID()}
	return e.AppendRecord(nil, envelope.EncodeError(CodeNoSubscribers, "no subscriber of "+string(v.Topic())+" on this proxy"))
}

// proxyAck is the ACK record for a published record.
func proxyAck(v *envelope.View) []byte {
	ack := envelope.Header{Kind: envelope.KindAck, ID: v.ID()}
	return ack.AppendRecord(nil, nil)
}

// publisher is one registered central proxy.
type publisher struct {
	front, back string
	ack         bool
}

// parsePublisher reads "FRONT|BACK|ack" (or "noack"); with CURVE the
// member's key goes with each endpoint.
func parsePublisher(member string) (publisher, bool) {
	rest, k, keyed, err := curve.SplitMember(member)
	parts := strings.Split(rest, "|")
	if err != nil || len(parts) != 3 {
		return publisher{}, false
	}
	if keyed {
		parts[0], parts[1] = curve.WithKey(parts[0], k), curve.WithKey(parts[1], k)
	}
	return publisher{front: parts[0], back: parts[1], ack: parts[2] == "ack"}, true
}

// publishers returns the registered central proxies, parsed once per
// change of the registration (the route cache follows the matchmaker's
// change notices), not at every publish.
func (n *Node) publishers(ctx context.Context) ([]publisher, error) {
	members, _, err := n.routes.lookup(ctx, publishersKey)
	if err != nil {
		return nil, fmt.Errorf("relay: look up publisher proxies: %w", err)
	}
	if len(members) == 0 {
		return nil, nil
	}
	n.pubMu.Lock()
	defer n.pubMu.Unlock()
	if len(n.pubFrom) == len(members) && &n.pubFrom[0] == &members[0] {
		return n.pubs, nil
	}
	var pubs []publisher
	for _, m := range members {
		if p, ok := parsePublisher(m); ok {
			pubs = append(pubs, p)
		}
	}
	n.pubFrom, n.pubs = members, pubs
	return pubs, nil
}

// publish sends a FANOUT or NOTIFY through a publisher proxy, the next one
// round-robin (a proxy that missed an ACK lately last). Without acks it is
// sent once. With acks it is published with a window of unacknowledged
// messages per proxy (WithPublishWindow): publish returns once the message
// is sent and waits only while the window is full; the resender sends it
// again through the next proxy until a proxy acknowledges it, and one no
// proxy acknowledges by its deadline is reported undelivered
// (WithUndelivered).
func (n *Node) publish(ctx context.Context, hdr *envelope.Header, rec []byte, deadline time.Time) error {
	pubs, err := n.publishers(ctx)
	if err != nil {
		return err
	}
	if len(pubs) == 0 {
		return fmt.Errorf("%w: no publisher proxy registered (WithPubSub is on: start one with `node proxy --publisher`)", ErrNoServers)
	}
	start := n.nextIndex(publishersKey, len(pubs))
	order := make([]publisher, 0, len(pubs))
	order = append(append(order, pubs[start:]...), pubs[:start]...)
	now := time.Now()
	// Proxies that missed an ACK lately go last: one that did is
	// probably gone, and its registration outlives it by up to a TTL.
	slices.SortStableFunc(order, func(a, b publisher) int {
		sa, sb := n.suspect(a.front, now), n.suspect(b.front, now)
		switch {
		case sa == sb:
			return 0
		case sb:
			return -1
		}
		return 1
	})
	p := order[0]
	if !p.ack {
		return n.push(ctx, p.front, rec, deadline)
	}
	fronts := make([]string, len(order))
	for i, o := range order {
		fronts[i] = o.front
	}
	window := n.window(p.front)
	select {
	case window <- struct{}{}:
	default:
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		select {
		case window <- struct{}{}:
		case <-t.C:
			return fmt.Errorf("%w: publish window of %s full until the deadline (WithPublishWindow %d)", ErrBackPressure, p.front, cap(window))
		case <-ctx.Done():
			return ctx.Err()
		case <-n.down:
			return n.downErr()
		}
	}
	c := n.pending.GetFor(hdr.ID, deadline)
	c.Rec, c.Addr = rec, p.front
	n.resender.Resent(c, fronts, true)
	c.OnFinish(func(res actors.Result) {
		<-window
		if res.Err == nil && n.resender.Attempts(c) > 0 {
			n.suspects.Store(p.front, time.Now().Add(suspectFor))
		}
		n.settled(c, res, false)
	})
	n.pending.Add(c)
	if err := n.push(ctx, p.front, rec, deadline); err != nil {
		if n.pending.Take(c.ID) != nil {
			<-window
		}
		return err
	}
	n.resender.Schedule(c)
	return nil
}

// window returns the window of unacknowledged publishes through the proxy
// at front: a slot is taken per publish and given back at its ACK (or its
// end).
func (n *Node) window(front string) chan struct{} {
	if w, ok := n.windows.Load(front); ok {
		return w.(chan struct{})
	}
	w, _ := n.windows.LoadOrStore(front, make(chan struct{}, n.opts.publishWindow))
	return w.(chan struct{})
}

// suspectFor is how long a proxy that missed an ACK is tried last.
const suspectFor = 10 * time.Second

// suspect reports whether the proxy at front missed an ACK lately.
func (n *Node) suspect(front string, now time.Time) bool {
	v, ok := n.suspects.Load(front)
	if !ok {
		return false
	}
	if now.After(v.(time.Time)) {
		n.suspects.Delete(front)
		return false
	}
	return true
}

// watchPublishers keeps the subscriber connected to the right proxies.
// Runs in its own goroutine.
func (n *Node) watchPublishers() { n.everyChange(proxyWatchTick, n.syncPublishers) }

// everyChange runs f now, at every matchmaker change and every period,
// until the node goes down. Runs in the caller's goroutine.
func (n *Node) everyChange(period time.Duration, f func()) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		changed := n.mm.Changed()
		f()
		select {
		case <-n.down:
			return
		case <-changed:
		case <-t.C:
		}
	}
}

func (n *Node) syncPublishers() {
	ctx, cancel := context.WithTimeout(n.base, 2*time.Second)
	defer cancel()
	local, err := n.mm.Lookup(ctx, localPublisherKey(n.opts.host))
	if err != nil {
		n.log.Warn("look up local publisher proxy", "err", err)
		return
	}
	eps, _ := n.admitted(local)
	if len(eps) == 0 {
		members, err := n.mm.Lookup(ctx, publishersKey)
		if err != nil {
			n.log.Warn("look up publisher proxies", "err", err)
			return
		}
		members, _ = n.admitted(members)
		for _, m := range members {
			if p, ok := parsePublisher(m); ok {
				eps = append(eps, p.back)
			}
		}
	}
	n.subState.SetEndpoints(eps)
	n.system.Root.Send(n.pids[ActorSubscriber], actors.Sync{})
}

// subscribe and unsubscribe change the node's subscriptions in pub/sub mode.
func (n *Node) subscribe(prefixes ...string) {
	if n.subState == nil {
		return
	}
	n.subState.Subscribe(prefixes...)
	n.system.Root.Send(n.pids[ActorSubscriber], actors.Sync{})
}

func (n *Node) unsubscribe(prefixes ...string) {
	if n.subState == nil {
		return
	}
	n.subState.Unsubscribe(prefixes...)
	n.system.Root.Send(n.pids[ActorSubscriber], actors.Sync{})
}

// ProxyOptions configure a publisher proxy.
type ProxyOptions struct {
	Matchmaker       string        // required
	Host             string        // the host a local proxy serves; default os.Hostname
	BindAddress      string        // default 127.0.0.1
	PortMin, PortMax int           // default 20000-29999
	Ack              bool          // central: acknowledge each message published
	Local            bool          // a local proxy: subscribe to the central ones, republish on Host
	RegistrationTTL  time.Duration // default 30s
	Logger           *slog.Logger  // default: discard
	// Frontend and Backend ("HOST:PORT") fix a router proxy's endpoints;
	// default: BindAddress and a port from the range.
	Frontend, Backend string
	// Advertise is the address the proxy registers when it is not the
	// bind address (needed when BindAddress is a wildcard, "0.0.0.0").
	Advertise string
	// CurveKey (a secret key file) and CurveAllow (an allow-list file or
	// directory) turn CURVE on, as relay.WithCurve does for a node: the
	// proxy admits only allowed keys on both sides, registers its public
	// key, and trusts only allowed central proxies (a local proxy).
	// CurveKeys and CurveAllowList give them in memory instead.
	CurveKey, CurveAllow string
	CurveKeys            *curve.KeyPair
	CurveAllowList       *curve.AllowList
}

// PublisherProxy is a running publisher proxy (see WithPubSub).
type PublisherProxy struct {
	*proxyBase
	proxy *sockets.Proxy      // central
	sub   *sockets.Subscriber // local
}

// StartPublisherProxy starts a central (or, with Local, a local) publisher
// proxy and registers it with the matchmaker.
func StartPublisherProxy(ctx context.Context, o ProxyOptions) (*PublisherProxy, error) {
	if o.Local && o.Ack {
		return nil, fmt.Errorf("relay: proxy: --ack is for central proxies (a local proxy republishes what they accepted)")
	}
	base, err := openProxy(o, "proxy")
	if err != nil {
		return nil, err
	}
	p := &PublisherProxy{proxyBase: base}
	o, bind, opts := base.opts, base.bind(), base.options()
	var key matchmaker.Key
	var member string
	var follow func(context.Context)
	if o.Local {
		p.sub, err = sockets.StartSubscriber(base.zctx, sockets.SubscriberConfig{
			Options: opts, Republish: &bind,
			OnDrop:    func(err error) { p.log.Warn("local proxy dropped a message", "err", err) },
			OnRefused: func(err error) { p.refused(err.Error()) },
			OnFail:    p.fail,
		})
		if err == nil {
			p.sub.Update(nil, nil, []string{""}, nil)
			key, member, follow = localPublisherKey(o.Host), p.sub.Endpoint(), p.followCentrals()
		}
	} else {
		cfg := sockets.ProxyConfig{Front: bind, Back: bind, Options: opts, Prefix: proxyPrefix,
			OnDrop:    func(err error) { p.log.Warn("proxy dropped a message", "err", err) },
			OnRefused: p.refused, OnFail: p.fail}
		mode := "noack"
		if o.Ack {
			cfg.Ack, cfg.Nack, mode = proxyAck, proxyNack, "ack"
		}
		p.proxy, err = sockets.StartProxy(base.zctx, cfg)
		if err == nil {
			front, back := p.proxy.Endpoints()
			key, member = publishersKey, front+"|"+back+"|"+mode
		}
	}
	if err == nil {
		err = p.announce(ctx, key, member, follow)
	}
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("relay: proxy: %w", err)
	}
	return p, nil
}

// followCentrals returns what keeps a local proxy subscribed to every
// central proxy. It runs in maintain's goroutine.
func (p *PublisherProxy) followCentrals() func(context.Context) {
	connected := map[string]bool{}
	return func(ctx context.Context) {
		lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		members, err := p.mm.Lookup(lctx, publishersKey)
		cancel()
		if err != nil {
			return
		}
		want := map[string]bool{}
		for _, m := range p.admitted(members) {
			if pub, ok := parsePublisher(m); ok {
				want[pub.back] = true
			}
		}
		var add, remove []string
		for e := range want {
			if !connected[e] {
				add = append(add, e)
			}
		}
		for e := range connected {
			if !want[e] {
				remove = append(remove, e)
			}
		}
		if len(add)+len(remove) > 0 {
			p.sub.Update(add, remove, nil, nil)
		}
		connected = want
	}
}

// Close unregisters the proxy and stops it, letting what it accepted (and
// acknowledged) reach the subscribers first. Idempotent.
func (p *PublisherProxy) Close() error {
	return p.close(func() {
		if p.proxy != nil {
			p.proxy.StopLinger(time.Second)
		}
		if p.sub != nil {
			p.sub.StopLinger(time.Second)
		}
	})
}
