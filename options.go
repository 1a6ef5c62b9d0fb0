package relay

import (
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"time"

	"github.com/relay-dev/relay/actors"
	"github.com/relay-dev/relay/curve"
	"github.com/relay-dev/relay/internal/security"
	"github.com/relay-dev/relay/sockets"
	"github.com/relay-dev/relay/supervisor"
)

// Option configures a Node; see Start for the list.
type Option func(*options)

type options struct {
	host             string
	matchmaker       string
	bindAddress      string
	portMin, portMax int
	callTimeout      time.Duration
	discoveryWait    time.Duration
	registrationTTL  time.Duration
	drainTimeout     time.Duration
	queueSize        int
	hwm              int
	maxMessageSize   int64
	strategy         supervisor.Strategy
	pubsub           bool
	acks             bool
	retry            actors.Retry
	dedupTTL         time.Duration
	ackFilter        func(id string) bool
	waitOnFull       bool
	routerProxy      bool
	maxHandlers      int
	handlerQueue     int
	handlerBytes     int
	lossReports      bool
	inproc           bool
	publishWindow    int
	idleTimeout      time.Duration
	dataDir          string
	dedupBytes       int
	maxConnections   int
	heartbeat        time.Duration
	peerTimeout      time.Duration // a connection silent this long is dead (ZMTP heartbeat timeout)
	undelivered      func(Undelivered)
	log              *slog.Logger

	clientInterceptors []ClientInterceptor
	serverInterceptors []ServerInterceptor
	curve              security.Setup
	advertise          string
}

func defaultOptions() options {
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	return options{
		host:            host,
		lossReports:     true,
		matchmaker:      "memory://default",
		bindAddress:     "127.0.0.1",
		portMin:         20000,
		portMax:         29999,
		callTimeout:     30 * time.Second,
		discoveryWait:   time.Second,
		registrationTTL: 30 * time.Second,
		drainTimeout:    5 * time.Second,
		queueSize:       8192,
		hwm:             32,
		maxMessageSize:  16 << 20,
		strategy:        supervisor.Default,
		retry:           actors.Retry{Base: 100 * time.Millisecond, Multiplier: 2, Max: time.Second},
		dedupTTL:        5 * time.Minute,
		maxHandlers:     256,
		handlerQueue:    4096,
		handlerBytes:    DefaultHandlerQueueBytes,
		publishWindow:   1024,
		idleTimeout:     30 * time.Second,
		dedupBytes:      64 << 20,
		maxConnections:  4096,
		heartbeat:       sockets.DefaultOptions().HeartbeatIvl,
		peerTimeout:     sockets.DefaultOptions().HeartbeatTimeout,
		log:             slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// validate returns the error of the first bad option, naming it, or nil.
func (o *options) validate() error {
	for _, err := range []error{
		require(o.host != "", "WithHost", "empty host name"),
		require(o.bindAddress != "", "WithBindAddress", "empty address"),
		require(o.portMin >= 1 && o.portMax <= 65535 && o.portMin <= o.portMax, "WithPortRange",
			"bad range %d-%d (want 1 <= min <= max <= 65535)", o.portMin, o.portMax),
		atLeast("WithCallTimeout", o.callTimeout, 1, "must be positive"),
		atLeast("WithDiscoveryWait", o.discoveryWait, 0, "must not be negative"),
		atLeast("WithRegistrationTTL", o.registrationTTL, 3*time.Millisecond, "must be at least 3ms"),
		atLeast("WithDrainTimeout", o.drainTimeout, 0, "must not be negative"),
		atLeast("WithQueueSize", o.queueSize, 1, "must be at least 1"),
		atLeast("WithHighWaterMark", o.hwm, 1, "must be at least 1"),
		atLeast("WithMaxMessageSize", o.maxMessageSize, 1024, "must be at least 1024 bytes"),
		require(o.log != nil, "WithLogger", "nil logger"),
		require(!sockets.Wildcard(o.bindAddress) || o.advertise != "", "WithBindAddress",
			"%q listens on every address of this host, but the node must register one address that others can reach it at: set WithAdvertise to that address, or bind one interface (WithBindAddress \"eth0\"), whose address is registered", o.bindAddress),
		require(!sockets.Wildcard(o.advertise), "WithAdvertise", "%q is not an address others can reach: give one address of this host", o.advertise),
		badIf("WithCurve", o.curve.Check()),
		badIf("WithMatchmaker", parseURL(o.matchmaker)),
		require(o.retry.Base > 0 && o.retry.Multiplier >= 1 && o.retry.Attempts >= 0, "WithRetry",
			"want base > 0, multiplier >= 1, attempts >= 0; got %v, %v, %d", o.retry.Base, o.retry.Multiplier, o.retry.Attempts),
		atLeast("WithMaxHandlers", o.maxHandlers, 1, "must be at least 1"),
		atLeast("WithDedupBytes", o.dedupBytes, 0, "must not be negative"),
		atLeast("WithIdleTimeout", o.idleTimeout, 0, "must not be negative"),
		atLeast("WithMaxConnections", o.maxConnections, 1, "must be at least 1"),
		require(o.heartbeat > 0 && o.peerTimeout >= o.heartbeat, "WithHeartbeat",
			"want an interval > 0 and a timeout >= it, got %v and %v", o.heartbeat, o.peerTimeout),
		atLeast("WithPublishWindow", o.publishWindow, 1, "must be at least 1"),
		atLeast("WithHandlerQueueBytes", o.handlerBytes, 0, "must be 0 (no bound) or more"),
		atLeast("WithHandlerQueue", o.handlerQueue, 1, "must be at least 1"),
		atLeast("WithDedupTTL", o.dedupTTL, 1, "must be positive"),
		badIf("WithSupervisor", o.strategy.Validate()),
	} {
		if err != nil {
			return err
		}
	}
	return nil
}

// badOption is the error of a bad option: it names the option and says
// what is wrong.
func badOption(option, format string, args ...any) error {
	return fmt.Errorf("relay: option %s: %s", option, fmt.Sprintf(format, args...))
}

// require is the error of option unless ok holds.
func require(ok bool, option, format string, args ...any) error {
	if ok {
		return nil
	}
	return badOption(option, format, args...)
}

// atLeast is the error of option when its value v is below min; want
// says what it must be.
func atLeast[T ~int | ~int64](option string, v, min T, want string) error {
	return require(v >= min, option, "%s, got %v", want, v)
}

// badIf is the error of option when checking it failed with err.
func badIf(option string, err error) error {
	if err == nil {
		return nil
	}
	return badOption(option, "%v", err)
}

// parseURL checks that u parses as a URL.
func parseURL(u string) error {
	_, err := url.Parse(u)
	return err
}

// WithHost sets the host name the node advertises; directed targets name it
// in Target.Server. Default: os.Hostname().
func WithHost(name string) Option { return func(o *options) { o.host = name } }

// WithMatchmaker selects the name service by URL. "memory://NAME" (default
// "memory://default"): nodes of one process that name the same registry find
// each other. "file:///path/hosts.json": a static JSON map of topic to
// "host:port" entries, reloaded when it changes (see matchmaker.File); a
// server must then bind the port its entry names (WithPortRange(p, p)).
// "redis://[:password@]host:port[/db]" and
// "redis+sentinel://h1:26379,h2:26379/mastername[/db]": Redis, with
// per-member liveness (see matchmaker.Redis).
func WithMatchmaker(url string) Option { return func(o *options) { o.matchmaker = url } }

// WithBindAddress sets where the node's ROUTER binds: an IPv4 address
// of this host, which it also advertises unless WithAdvertise says
// otherwise; an interface name ("eth0", "lo"), which binds and advertises
// that interface's first IPv4 address; or a wildcard ("0.0.0.0", "*"),
// which needs WithAdvertise (a node never registers 0.0.0.0).
// "ipc://DIR" binds a Unix-domain (ipc) endpoint in directory DIR instead
// of TCP: only nodes of the same host can reach it, without TCP's costs.
// An address Start cannot bind is a *BindError. Default "127.0.0.1".
func WithBindAddress(addr string) Option { return func(o *options) { o.bindAddress = addr } }

// WithAdvertise sets the address the node registers (the host part of its
// endpoint), where others reach it, when it differs from the bind address:
// a wildcard bind, or an address behind NAT. Default: the bind address.
func WithAdvertise(addr string) Option { return func(o *options) { o.advertise = addr } }

// WithCurve turns on ZMTP CURVE for every socket of the node: keyFile is
// its secret key file (`node keygen` writes one; a file that others may
// read is refused with the chmod that fixes it), allowPath a file or
// directory of the public keys it trusts (see curve.LoadAllowList). The
// node then admits as clients only keys on the allow-list (its ZAP
// handler), registers its public key with its endpoints, and connects only
// to servers and proxies that registered a key on its allow-list, which
// they must prove at the handshake. A plaintext peer and a CURVE node
// refuse each other (ErrUnauthorized, counted in Stats().Refused and
// Untrusted, and logged). The allow-list file is read again when it
// changes (every AllowListPoll) and on ReloadAllowList. Default: off
// (plaintext). See docs/SECURITY.md.
func WithCurve(keyFile, allowPath string) Option {
	return func(o *options) { o.curve = security.Setup{KeyFile: keyFile, AllowPath: allowPath} }
}

// WithCurveKeys is WithCurve with the key pair and the allow-list in
// memory; SetAllowList replaces the list.
func WithCurveKeys(keys curve.KeyPair, allow *curve.AllowList) Option {
	return func(o *options) { o.curve = security.Setup{Keys: &keys, Allow: allow} }
}

// WithPortRange sets the ports the node may bind; a busy port is skipped.
// Default 20000-29999.
func WithPortRange(min, max int) Option {
	return func(o *options) { o.portMin, o.portMax = min, max }
}

// WithCallTimeout sets the deadline of calls and casts whose ctx has none.
// Default 30s.
func WithCallTimeout(d time.Duration) Option { return func(o *options) { o.callTimeout = d } }

// WithDiscoveryWait sets how long a call or cast waits for a server of its
// target to register before it fails with ErrNoServers. Default 1s.
func WithDiscoveryWait(d time.Duration) Option { return func(o *options) { o.discoveryWait = d } }

// WithRegistrationTTL sets how long a registration lives without renewal;
// the node renews its registrations every third of it. Default 30s.
func WithRegistrationTTL(d time.Duration) Option {
	return func(o *options) { o.registrationTTL = d }
}

// WithDrainTimeout sets how long Close waits for handlers in flight before
// cancelling their contexts. Default 5s.
func WithDrainTimeout(d time.Duration) Option { return func(o *options) { o.drainTimeout = d } }

// WithQueueSize bounds each send queue (requests, replies), in messages.
// A full queue is ErrBackPressure to the caller (or a wait, with
// WithWaitOnFull). With WithHighWaterMark it bounds what a caller can
// have in flight to one server before it sees back-pressure: the queue,
// plus the ZeroMQ pipes and kernel buffers on both sides. Default 8192.
func WithQueueSize(n int) Option { return func(o *options) { o.queueSize = n } }

// WithHighWaterMark sets the ZeroMQ send and receive high-water marks of
// every socket, in ZeroMQ messages. relay packs the records queued for one
// peer into messages of up to 64 KiB, so a pipe holds at most about
// n × 64 KiB: this bounds the memory a peer can make a node hold in
// ZeroMQ's buffers per connection. Default 32 (2 MiB).
func WithHighWaterMark(n int) Option { return func(o *options) { o.hwm = n } }

// WithMaxMessageSize sets the largest inbound message accepted, in bytes;
// a peer that sends a larger one is disconnected. Default 16 MiB.
func WithMaxMessageSize(n int64) Option { return func(o *options) { o.maxMessageSize = n } }

// WithSupervisor sets the strategy that supervises the node's actors.
// Default supervisor.Default (one for one, 10 restarts in 10s).
func WithSupervisor(s supervisor.Strategy) Option { return func(o *options) { o.strategy = s } }

// WithLogger sets the logger. Default: discard.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithPubSub sends fanouts and notifications through publisher proxies
// (PUB/SUB; start them with `node proxy --publisher`) instead of one message
// per receiver. Start fails when no publisher proxy is registered.
// Default false (direct).
func WithPubSub(on bool) Option { return func(o *options) { o.pubsub = on } }

// WithAcks asks servers to confirm each call and cast once its handler has
// run (a cast's ACK; a call's reply); what is not confirmed is sent again to
// the same server on the WithRetry schedule until its deadline, and servers
// handle each msg_id once (WithDedupTTL; across their restarts with
// WithDataDir): at least once, and once unless a server stops while the
// handler runs (Request.Redelivered). A cast that
// was never acknowledged by its deadline is reported undelivered
// (WithUndelivered). A call to a bare target (no Target.Server) whose
// server's connection is lost or cannot be made (a crash, kill -9, a dead
// hosts-file entry) is resent to another server of its topic instead
// (Stats.Failovers): its handler may then run on both if the first ran it
// before it went. A directed call, and every cast, stay with their server.
// Default false.
func WithAcks(on bool) Option { return func(o *options) { o.acks = on } }

// WithRetry sets the resend schedule with WithAcks: after base, then
// base×multiplier, …, each wait at most a second (or base, when longer), at
// most attempts resends (0: until the deadline). Default 100ms, 2, 0: a
// message is resent every second until its deadline, so that a server
// that restarts within it gets it.
func WithRetry(base time.Duration, multiplier float64, attempts int) Option {
	return func(o *options) {
		o.retry = actors.Retry{Base: base, Multiplier: multiplier, Attempts: attempts, Max: max(base, time.Second)}
	}
}

// WithDedupTTL sets how long a server remembers the msg_ids (and a call's
// reply) it received with acks. Default 5 minutes.
func WithDedupTTL(d time.Duration) Option { return func(o *options) { o.dedupTTL = d } }

// WithAckFilter is a test hook: the server acknowledges a message only when
// f(msgID) returns true, to exercise resends and dedup.
func WithAckFilter(f func(msgID string) bool) Option { return func(o *options) { o.ackFilter = f } }

// WithWaitOnFull makes a call or cast that finds its send queue full wait
// for room until its deadline, instead of failing at once with
// ErrBackPressure. Default false.
func WithWaitOnFull(on bool) Option { return func(o *options) { o.waitOnFull = on } }

// WithRouterProxy sends calls and casts through router proxies (start them
// with `node proxy --router`) instead of straight to servers: every node
// connects to the k proxies only. Servers and clients must agree; Start
// fails when no router proxy is registered. Fanout then needs WithPubSub.
// Default false (direct).
func WithRouterProxy(on bool) Option { return func(o *options) { o.routerProxy = on } }

// WithMaxHandlers bounds the handlers a node runs at once: the worker
// goroutines of its handler pool, started as requests need them. A
// blocking handler holds one worker. Default 256.
func WithMaxHandlers(n int) Option { return func(o *options) { o.maxHandlers = n } }

// WithHandlerQueue bounds the requests waiting for a free handler. When the
// queue is full the node stops reading requests until it has room again,
// so that back-pressure reaches the senders (their send queues fill, and
// Call, Cast and Notify return ErrBackPressure, or wait WithWaitOnFull)
// rather than requests being dropped. Default 4096.
func WithHandlerQueue(n int) Option { return func(o *options) { o.handlerQueue = n } }

// WithLossReports makes the node keep each cast, fanout and notification
// without acks it sent while the connection's buffers may still hold it
// unread, and report those to WithUndelivered (ErrConnectionLost) when the
// connection drops. On by default; off, such a message lost with its
// connection is not reported (at most once, unseen), and the loop copies
// nothing.
func WithLossReports(on bool) Option { return func(o *options) { o.lossReports = on } }

// DefaultHandlerQueueBytes is WithHandlerQueueBytes's default: 16 MiB.
const DefaultHandlerQueueBytes = 16 << 20

// WithHandlerQueueBytes bounds the requests waiting for a free handler in
// bytes too (their records, as received): the node stops reading requests
// once they hold n bytes, as with WithHandlerQueue, so that large requests
// queued behind slow handlers cannot fill memory. 0: count bound only.
// Default 16 MiB.
func WithHandlerQueueBytes(n int) Option { return func(o *options) { o.handlerBytes = n } }

// WithInproc makes the node reachable by the nodes of its own process over
// ZeroMQ's inproc transport, and makes it reach them that way: no TCP, no
// I/O thread between them. Nodes of other processes reach it as before.
// Both ends need it. Default false.
func WithInproc(on bool) Option { return func(o *options) { o.inproc = on } }

// WithPublishWindow bounds the fanouts and notifications a node has sent
// through one publisher proxy with acks and not yet seen acknowledged.
// Within the window a publish returns once it is sent, and the resender
// sends it again through the next proxy until one acknowledges it; a full
// window makes publishing wait (until the deadline: ErrBackPressure).
// Default 1024.
func WithPublishWindow(n int) Option { return func(o *options) { o.publishWindow = n } }

// WithIdleTimeout closes the connection to a server (its DEALER) once
// nothing was sent to it for d and no answer from it is awaited; the next
// message to it connects again. Servers that went away (restarted on
// another port, unregistered) are so forgotten instead of being kept
// connected, and reconnecting, for ever. 0 keeps every connection.
// Default 30s.
func WithIdleTimeout(d time.Duration) Option { return func(o *options) { o.idleTimeout = d } }

// WithMaxConnections bounds the servers a node is connected to at once (one
// DEALER each). A call or cast to one more fails with ErrTooManyConnections
// until an idle one is closed (WithIdleTimeout). Default 4096.
func WithMaxConnections(n int) Option { return func(o *options) { o.maxConnections = n } }

// WithHeartbeat sets the ZMTP heartbeats of the node's connections: a
// PING every interval, and a connection that hears nothing for timeout is
// closed (a dead peer found). Each connection costs a PING and a PONG per
// interval in each direction, handled by the process's one ZeroMQ I/O
// thread: node scale measured the default (1s, 5s) dropping connections
// of a process with some 6,000 of them on a busy 2-core machine, and
// (10s, 30s) holding (docs/SCALE.md). Default 1s, 5s.
func WithHeartbeat(interval, timeout time.Duration) Option {
	return func(o *options) { o.heartbeat, o.peerTimeout = interval, timeout }
}

// WithDataDir keeps what the node must not forget when its process ends in
// directory dir (made if missing; one node per directory), with bbolt, an
// embedded store: the requests with acks its servers handled, so that a
// request resent to its next process is answered again instead of run
// again; and its casts with acks not yet acknowledged, which its next
// process sends again until they are (durable casts: Cast returns once the
// cast is written). Without it both live in memory only. Default none.
func WithDataDir(dir string) Option { return func(o *options) { o.dataDir = dir } }

// WithDedupBytes bounds the bytes of answers a server keeps to answer
// resent calls again (WithAcks; WithDedupTTL bounds how long). Beyond it the
// oldest answers go: a resend of such a call gets the error code
// "ReplyUnavailable" (the handler ran, the answer is gone), never a second
// run. 0: no bound. Default 64 MiB.
func WithDedupBytes(n int) Option { return func(o *options) { o.dedupBytes = n } }
