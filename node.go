package relay

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/relay-dev/relay/actors"
	"github.com/relay-dev/relay/curve"
	"github.com/relay-dev/relay/internal/security"
	"github.com/relay-dev/relay/internal/track"
	"github.com/relay-dev/relay/matchmaker"
	"github.com/relay-dev/relay/sockets"
	"github.com/relay-dev/relay/store"
	"github.com/relay-dev/relay/supervisor"
)

// startTimeout bounds how long Start waits for the node's actors.
const startTimeout = 10 * time.Second

// Node is one relay participant: it serves targets and calls others. Make
// one with Start and release it with Close. A Node is safe for concurrent
// use.
type Node struct {
	opts          options
	log           *slog.Logger
	id            []byte // reply identity: routing id of this node's DEALERs
	mm            *countedMatchmaker
	zctx          *sockets.Context
	system        *actor.ActorSystem // the process's, shared by its nodes
	releaseSystem func()
	root          string // the node's actors' root name in the system
	monitor       *supervisor.Monitor
	tree          *actor.PID
	pids          map[string]*actor.PID
	peers         *sockets.Peers   // the dealers' send queues, one per server
	replies       *sockets.Outbox  // the router's send queue
	pending       *actors.Pending  // calls waiting for answers
	resender      *actors.Resender // resends messages with acks
	pool          *actors.Pool     // runs handlers
	intake        *actors.Intake   // turns received batches into work
	answers       *actors.Answers  // sends answers the way requests came
	ledger        actors.Ledger    // requests with acks handled, by msg_id: handled once
	store         *store.Store     // WithDataDir's, or nil
	topo          topology         // direct, router proxy or pub/sub: chosen once by Start
	subState      *actors.SubState // pub/sub mode: what the fanout-subscriber follows; nil otherwise
	loops         loops            // the socket loops running now
	counters      actors.Counters
	dropped       *actors.ThrottledLog // rate-limited warnings of drops
	failed        *actors.ThrottledLog // rate-limited reports of handler failures and panics
	running       *running             // calls whose handlers run, for CANCEL
	invoke        Invoker              // the client interceptors' chain; nil without any
	started       time.Time
	extras        infoExtras            // AddInfo's
	renewErr      atomic.Pointer[error] // the last renewal's failure, or nil
	renewKick     chan struct{}         // renews at once: a registration the name service refused for now
	linger        actors.Linger         // how long sockets flush at close
	group         track.Group           // handler workers, batch listeners and the node's loops
	base          context.Context
	cancel        context.CancelFunc
	endpoint      string
	bindAt        string               // where the ROUTER binds: WithBindAddress, an interface resolved to its address
	routes        *routes              // cached lookups
	suspects      suspects             // servers and proxies that failed lately, tried last
	rr            sync.Map             // matchmaker.Key -> *atomic.Uint64, round-robin position
	sec           *security.Security   // CURVE keys and allow-list; nil: plaintext
	refusals      *actors.KeyedLog     // rate-limited warnings of refused connections, per reason
	untrust       *actors.ThrottledLog // rate-limited warnings of registrations not used

	// down is closed when the node stops being usable: Close began, or an
	// actor failed for good (then failure holds why).
	down      chan struct{}
	downOnce  sync.Once
	failure   atomic.Pointer[error]
	closeOnce sync.Once
	closeErr  error

	// mu guards the fields below.
	mu        sync.RWMutex
	servers   map[string][]*Server   // by topicKey(exchange, topic)
	handled   chan struct{}          // closed (and replaced) by every Handle
	listeners map[string][]*Listener // by "topic.priority"
}

// Start starts a node: its actors, its bound ROUTER, its matchmaker client.
// It returns once the node can serve and call. Options:
//
//	WithHost(name)             advertised host name (default os.Hostname)
//	WithMatchmaker(url)        "memory://NAME" (default), "file:///path/hosts.json", "redis://host:port"
//	WithBindAddress(addr)      address or interface to bind and advertise (default 127.0.0.1)
//	WithAdvertise(addr)        address to register when it is not the bind address (needed with 0.0.0.0)
//	WithCurve(key, allow)      CURVE on every socket: secret key file, allow-list file or directory
//	WithCurveKeys(kp, allow)   the same with the keys in memory
//	WithPortRange(min, max)    ports to bind, busy ones skipped (default 20000-29999)
//	WithCallTimeout(d)         deadline when ctx has none (default 30s)
//	WithDiscoveryWait(d)       wait for a target's first server (default 1s)
//	WithRegistrationTTL(d)     registration lifetime, renewed every third (default 30s)
//	WithDrainTimeout(d)        Close's wait for handlers in flight (default 5s)
//	WithQueueSize(n)           bound of each send queue (default 8192)
//	WithHighWaterMark(n)       ZeroMQ high-water marks, in batches of up to 64 KiB (default 32)
//	WithMaxMessageSize(n)      largest inbound message (default 16 MiB)
//	WithSupervisor(strategy)   supervision of the actors (default supervisor.Default)
//	WithPubSub(on)             fanouts and notifications through publisher proxies (default off)
//	WithAcks(on)               acknowledged calls and casts, resent until acked, handled once (default off)
//	WithRetry(base, mult, n)   resend schedule with acks (default 100ms, 2, until the deadline)
//	WithDedupTTL(d)            how long servers remember msg_ids (default 5m)
//	WithWaitOnFull(on)         wait for room in a full send queue instead of ErrBackPressure
//	WithRouterProxy(on)        calls and casts through router proxies (default off)
//	WithMaxHandlers(n)         handlers running at once (default 256)
//	WithHeartbeat(ivl, t)      ZMTP heartbeat interval and dead-peer timeout (default 1s, 5s)
//	WithHandlerQueue(n)        requests queued for a handler before reading pauses (default 4096)
//	WithClientInterceptor(f…)  interceptors around every call, cast, fanout and notification sent
//	WithServerInterceptor(f…)  interceptors around every handler
//	WithLogger(l)              logger (default: discard)
//
// A bad option is an error naming it; an address or port it cannot bind
// is a *BindError, at once. ctx bounds the start only.
func Start(ctx context.Context, opts ...Option) (*Node, error) {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	n, err := newNode(o)
	if err != nil {
		return nil, err
	}
	startCtx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if err := n.spawnActors(startCtx); err != nil {
		n.Close()
		return nil, err
	}
	if err := n.startGoroutines(startCtx); err != nil {
		n.Close()
		return nil, err
	}
	if o.inproc {
		locals.Store(n.endpoint, n)
	}
	n.log.Info("node started", "endpoint", n.endpoint, "matchmaker", matchmaker.Redact(o.matchmaker), "curve", n.sec != nil)
	return n, nil
}

// newNode makes a node of o: its CURVE keys, matchmaker client, sockets'
// context and ledger open, its topology chosen, the parts that outlive
// its actors made; its actors are not spawned yet.
func newNode(o options) (*Node, error) {
	bindAt, err := bindHost(o.bindAddress)
	if err != nil {
		return nil, newBindError(&o, err)
	}
	log := o.log.With("component", "relay", "host", o.host)
	sec, err := security.New(o.curve, log)
	if err != nil {
		return nil, fmt.Errorf("relay: option WithCurve: %w", err)
	}
	opened, err := matchmaker.Open(o.matchmaker)
	if err != nil {
		return nil, fmt.Errorf("relay: option WithMatchmaker: %w", err)
	}
	mm := &countedMatchmaker{Matchmaker: opened}
	zctx, err := sec.NewContext()
	if err != nil {
		mm.Close()
		return nil, fmt.Errorf("relay: start: %w", err)
	}
	ledger, st, err := openLedger(&o)
	if err != nil {
		zctx.Close(time.Second)
		mm.Close()
		return nil, err
	}
	n := &Node{
		ledger:    ledger,
		store:     st,
		opts:      o,
		bindAt:    bindAt,
		log:       log,
		sec:       sec,
		id:        newNodeID(),
		mm:        mm,
		zctx:      zctx,
		peers:     sockets.NewPeers(o.queueSize, o.maxConnections),
		pending:   actors.NewPending(),
		replies:   sockets.NewOutbox(o.queueSize),
		down:      make(chan struct{}),
		renewKick: make(chan struct{}, 1),
		servers:   make(map[string][]*Server),
		handled:   make(chan struct{}),
		listeners: make(map[string][]*Listener),
		routes:    newRoutes(mm, o.registrationTTL),
		started:   time.Now(),
	}
	n.topo = newTopology(n)
	n.base, n.cancel = context.WithCancel(context.Background())
	n.dropped = actors.NewThrottledLog(n.log, time.Second)
	n.failed = actors.NewThrottledLog(n.log, time.Second)
	n.running = newRunning()
	n.invoke = chainClient(o.clientInterceptors, n.invoked)
	n.refusals = actors.NewKeyedLog(n.log, time.Second)
	n.untrust = actors.NewThrottledLog(n.log, time.Second)
	n.routes.admit = n.admitted
	n.wire()
	n.system, n.releaseSystem = supervisor.Shared(o.log.With("component", "actor"))
	n.root = "node-" + hex.EncodeToString(n.id[:8])
	n.monitor = supervisor.NewMonitor(n.system, n.root, n.log)
	return n, nil
}

// openLedger opens where the node records the requests with acks it
// handled: WithDataDir's store (which keeps its durable casts too), else
// memory.
func openLedger(o *options) (actors.Ledger, *store.Store, error) {
	if o.dataDir == "" {
		return actors.NewMemoryLedger(o.dedupTTL, o.dedupBytes), nil, nil
	}
	st, err := store.Open(o.dataDir, o.dedupTTL, o.dedupBytes)
	if err != nil {
		return nil, nil, fmt.Errorf("relay: option WithDataDir: %w", err)
	}
	return st, st, nil
}

// spawnActors spawns the node's actors and waits, within ctx, for the
// bound ROUTER and for every actor to be spawned, so that the node is
// whole when Start returns (KillActor finds every actor).
func (n *Node) spawnActors(ctx context.Context) error {
	type boundAt struct {
		endpoint string
		err      error
	}
	bound := make(chan boundAt, 1)
	failed := make(chan error, 1)
	spawned := make(chan string, 8)
	n.spawnTree(func(name string, _ *actor.PID) {
		select {
		case spawned <- name:
		default: // only the first spawn of each actor matters
		}
	}, func(ep string, err error) {
		select {
		case bound <- boundAt{ep, err}:
		default:
		}
	}, func(name string, err error) {
		if n.fail(fmt.Errorf("%w: %v", ErrNodeFailed, err)) {
			select {
			case failed <- err:
			default:
			}
		}
	})
	for waiting := len(n.pids) + 1; waiting > 0; waiting-- {
		select {
		case b := <-bound:
			if b.err != nil {
				return newBindError(&n.opts, b.err)
			}
			n.endpoint = b.endpoint
		case <-spawned:
		case err := <-failed:
			return fmt.Errorf("relay: start: %w (last failure: %s)", err, n.lastFailure())
		case <-ctx.Done():
			return fmt.Errorf("relay: start: actors not ready: %w", ctx.Err())
		}
	}
	return nil
}

// startGoroutines sends again what an earlier process left in the data
// directory, and starts the node's goroutines: the renewal of its
// registrations, the allow-list's watch, and the topology's.
func (n *Node) startGoroutines(ctx context.Context) error {
	if err := n.resendStored(); err != nil {
		return fmt.Errorf("relay: option WithDataDir: %w", err)
	}
	if err := n.group.Go(n.renewLoop); err != nil {
		return fmt.Errorf("relay: start: %w", err)
	}
	if err := n.group.Go(func() { n.sec.Watch(n.down) }); err != nil {
		return fmt.Errorf("relay: start: %w", err)
	}
	return n.topo.start(ctx)
}

// newNodeID returns 16 random bytes, the first never zero (ZeroMQ reserves
// routing ids that start with a zero byte).
func newNodeID() []byte {
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	if id[0] == 0 {
		id[0] = 1
	}
	return id
}

// admitted returns the registrations this node may use (see
// security.admit), counting and logging the others.
func (n *Node) admitted(members []string) ([]string, error) {
	return n.sec.Admitted(members, &n.counters, n.untrust)
}

// peerRefused is the dealers' OnRefused: a server refused this node's
// connection, or could not prove its key. Counted, logged, and the server
// is tried last for a while. Runs in the dealers loop.
func (n *Node) peerRefused(addr string, err error) {
	n.counters.Refused.Add(1)
	n.refusals.Warn(addr, "connection refused", "peer", addr, "err", err)
	n.suspects.add(addr, time.Now().Add(suspectFor))
}

// clientRefused is the router's OnRefused: a client's handshake failed.
// Runs in the router loop.
func (n *Node) clientRefused(reason string) {
	n.counters.Refused.Add(1)
	n.refusals.Warn(reason, "client connection refused", "reason", reason)
}

// Ready returns nil when the node is ready to serve: started, not closed
// or failed (its actors run; a failed socket actor is being restarted
// within its restart intensity), and its last renewal of its
// registrations worked. Else it says why. `node serve --http` answers
// /healthz with it.
func (n *Node) Ready() error {
	select {
	case <-n.down:
		return n.downErr()
	default:
	}
	if n.loops.router.Load() == nil || n.loops.dealers.Load() == nil {
		return fmt.Errorf("relay: node %s: socket loops not running", n.opts.host)
	}
	if p := n.renewErr.Load(); p != nil && *p != nil {
		return fmt.Errorf("relay: node %s: registrations not renewed: %w", n.opts.host, *p)
	}
	return nil
}

// Host returns the node's advertised host name.
func (n *Node) Host() string { return n.opts.host }

// Endpoint returns the address others reach the node's ROUTER at, e.g.
// "tcp://127.0.0.1:20517": its bind address and port, or WithAdvertise's
// address and the port.
func (n *Node) Endpoint() string { return n.endpoint }

// PublicKey returns the node's CURVE public key (zero without CURVE).
func (n *Node) PublicKey() curve.Key { return n.sec.PublicKey() }

// ReloadAllowList reads the node's allow-list file (WithCurve) again now,
// as it does by itself every AllowListPoll, for a SIGHUP handler. A newly
// listed key is admitted at once; a removed key's new connections are
// refused and so are the requests that reach the node on its existing
// ones. On an error the list in use stays.
func (n *Node) ReloadAllowList() error { return n.sec.Reload() }

// SetAllowList replaces the node's allow-list (WithCurveKeys), with the
// effects of ReloadAllowList. A list read from a file (WithCurve) is
// replaced until the file next changes.
func (n *Node) SetAllowList(a *curve.AllowList) error {
	if n.sec == nil {
		return errors.New("relay: set allow-list: the node has no CURVE keys (WithCurveKeys)")
	}
	n.sec.SetAllowList(a)
	return nil
}
