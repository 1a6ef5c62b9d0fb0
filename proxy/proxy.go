package proxy

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
	"github.com/relay-dev/relay/internal/renewal"
	"github.com/relay-dev/relay/internal/security"
	"github.com/relay-dev/relay/internal/track"
	"github.com/relay-dev/relay/matchmaker"
	"github.com/relay-dev/relay/sockets"
	"github.com/relay-dev/relay/supervisor"
)

// ErrFailed is what Failed reports, wrapped with the last failure: the
// proxy's socket loop failed more often than its supervisor allows
// (WithSupervisor); the proxy has unregistered and must be closed (and its
// process restarted).
var ErrFailed = errors.New("proxy: failed")

// startTimeout bounds how long a start waits for the first socket loop.
const startTimeout = 10 * time.Second

// watchTick is how often a proxy looks at the matchmaker when it has not
// said that anything changed.
const watchTick = time.Second

// base is what router and publisher proxies share: options, the
// matchmaker and ZeroMQ context, CURVE, the supervised socket actor, the
// registration and its renewal, failure reporting and Close.
type base struct {
	o    options
	log  *slog.Logger
	mm   matchmaker.Matchmaker
	zctx *sockets.Context
	sec  *security.Security // nil: plaintext
	// counters count refused connections, untrusted registrations and
	// loop failures.
	counters actors.Counters
	untrust  *actors.ThrottledLog
	refusals *actors.KeyedLog

	// The supervision tree: root name -> one socket actor, actor.
	system        *actor.ActorSystem // the process's, shared with its nodes
	releaseSystem func()
	root          string
	actor         string
	tree          *actor.PID
	monitor       *supervisor.Monitor
	linger        actors.Linger // how long the sockets flush at Close
	starts        atomic.Int64  // loops started
	stopTree      sync.Once

	key    matchmaker.Key
	member string // what is registered under key; set once, before maintain starts
	group  track.Group
	ctx    context.Context // ends at Close (or Crash): stops maintain, renewal and the allow-list watch
	cancel context.CancelFunc
	once   sync.Once

	failOnce sync.Once
	failed   chan error    // receives the proxy's failure, once
	stopped  chan struct{} // closed at that failure, or at Close
}

// openKind checks the options of a proxy of kind k and opens what it
// needs (see open), its log naming component.
func openKind(k kind, opts []Option, component string) (options, *base, error) {
	o, err := newOptions(k, opts)
	if err != nil {
		return o, nil, err
	}
	b, err := open(o, component)
	return o, b, err
}

// open opens the matchmaker, the ZeroMQ context and CURVE for a proxy
// whose component (in logs) is component.
func open(o options, component string) (*base, error) {
	log := o.log.With("component", component)
	sec, err := security.New(o.curve, log)
	if err != nil {
		return nil, fmt.Errorf("proxy: option WithCurve: %w", err)
	}
	mm, err := matchmaker.Open(o.matchmaker)
	if err != nil {
		return nil, fmt.Errorf("proxy: option WithMatchmaker: %w", err)
	}
	zctx, err := sec.NewContext()
	if err != nil {
		mm.Close()
		return nil, fmt.Errorf("proxy: %w", err)
	}
	b := &base{o: o, log: log, mm: mm, zctx: zctx, sec: sec,
		untrust: actors.NewThrottledLog(log, time.Second), refusals: actors.NewKeyedLog(log, time.Second),
		failed: make(chan error, 1), stopped: make(chan struct{})}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	if err := b.group.Go(func() { sec.Watch(b.ctx.Done()) }); err != nil {
		b.Close()
		return nil, fmt.Errorf("proxy: %w", err)
	}
	return b, nil
}

// socketOptions are the proxy's socket options.
func (b *base) socketOptions() sockets.Options {
	o := sockets.DefaultOptions()
	o.Curve = b.sec.Socket()
	return o
}

// supervise spawns the proxy's supervision tree, a supervisor with one
// socket actor (cfg) that owns the proxy's loop, and waits for the first
// loop: its failure to start is the proxy's. Later failures restart the
// loop in place; beyond the restart intensity the proxy fails (Failed).
func (b *base) supervise(ctx context.Context, cfg *actors.SocketConfig) error {
	cfg.Counters, cfg.CloseLinger = &b.counters, &b.linger
	first := make(chan error, 1)
	start := cfg.Start
	var firstFailed atomic.Bool
	cfg.Start = func(onFail func(error)) (actors.Loop, error) {
		if firstFailed.Load() {
			// The proxy never started (a port in use, say): its restarts
			// make no sockets, which Close (closing the ZeroMQ context as
			// StartRouter or StartPublisher returns the error) would race.
			return nil, errNeverStarted
		}
		l, err := start(onFail)
		if err != nil && len(first) == 0 && b.starts.Load() == 0 {
			firstFailed.Store(true)
		}
		if err == nil {
			b.starts.Add(1)
		}
		select {
		case first <- err:
		default: // only the first start is waited for
		}
		return l, err
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	b.actor, b.root = cfg.Name, "proxy-"+hex.EncodeToString(id[:])
	b.system, b.releaseSystem = supervisor.Shared(b.o.log.With("component", "actor"))
	b.monitor = supervisor.NewMonitor(b.system, b.root, b.log)
	tree := supervisor.Props(b.o.strategy, []supervisor.Child{{Name: cfg.Name, Props: actors.SocketProps(cfg)}}, nil, b.giveUp)
	var err error
	if b.tree, err = b.system.Root.SpawnNamed(tree, b.root); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	select {
	case err := <-first:
		return err
	case <-ctx.Done():
		return fmt.Errorf("socket loop not started: %w", ctx.Err())
	}
}

// errNeverStarted is what the restarts of a proxy's socket loop get when
// its first start failed.
var errNeverStarted = errors.New("proxy: the socket loop failed its first start")

// pid is the socket actor's address.
func (b *base) pid() *actor.PID { return actor.NewPID(b.system.Address(), b.root+"/"+b.actor) }

// refused is the loop's OnRefused: a connection refused at its handshake.
// Runs in the loop's goroutine.
func (b *base) refused(reason string) {
	b.counters.Refused.Add(1)
	b.refusals.Warn(reason, "connection refused", "reason", reason)
}

// admitted returns the registrations the proxy may use (see
// security.Admit).
func (b *base) admitted(members []string) []string {
	out, _ := b.sec.Admitted(members, &b.counters, b.untrust)
	return out
}

// announce registers member under key and starts the renewal loop and
// maintain; follow, when not nil, runs at every matchmaker change and tick.
func (b *base) announce(ctx context.Context, key matchmaker.Key, member string, follow func(context.Context)) error {
	b.key, b.member = key, b.sec.Member(member)
	if err := b.mm.Register(ctx, key, b.member, b.o.registrationTTL); err != nil {
		return fmt.Errorf("register %s: %w", key, err)
	}
	reg := renewal.Loop{MM: b.mm, TTL: b.o.registrationTTL, Log: b.log,
		Entries: func() []matchmaker.Entry { return []matchmaker.Entry{{Key: b.key, Addr: b.member}} }}
	if err := b.group.Go(func() { reg.Run(b.ctx, b.stopped, nil) }); err != nil {
		return err
	}
	if err := b.group.Go(func() { b.maintain(follow) }); err != nil {
		return err
	}
	b.log.Info("proxy started", "registered", key.String(), "as", b.member, "supervisor", b.o.strategy.String())
	return nil
}

// maintain runs follow at every matchmaker change and tick, and
// unregisters at once when the proxy fails (the renewal loop keeps the
// registration alive meanwhile). Runs in its own goroutine.
func (b *base) maintain(follow func(context.Context)) {
	tick := time.NewTicker(watchTick)
	defer tick.Stop()
	for {
		changed := b.mm.Changed()
		if follow != nil {
			follow(b.ctx)
		}
		select {
		case <-b.ctx.Done():
			return
		case <-b.stopped:
			_ = b.mm.Unregister(b.ctx, b.key, b.member)
			return
		case <-changed:
		case <-tick.C:
		}
	}
}

// giveUp is the supervisor's GiveUp: the socket actor exceeded its
// restart intensity. The proxy fails, saying why the loop last failed.
func (b *base) giveUp(_ string, err error) {
	last := "none recorded"
	if ev := b.monitor.Events(); len(ev) > 0 {
		last = ev[len(ev)-1].Reason
	}
	b.fail(fmt.Errorf("%w: %v (last failure: %s)", ErrFailed, err, last))
}

// fail makes the proxy fail: it unregisters at once (see maintain) and
// Failed tells its owner. Runs in the supervisor's goroutine.
func (b *base) fail(err error) {
	b.failOnce.Do(func() {
		b.log.Error("proxy failed beyond its restart intensity; unregistering", "err", err)
		b.failed <- err
		close(b.stopped)
	})
}

// Failed receives, once, the error (wrapping ErrFailed) of a proxy whose
// socket loop failed more often than its supervisor allows. The proxy has
// unregistered itself then; Close it and start a new one.
func (b *base) Failed() <-chan error { return b.failed }

// Restarts returns how often the proxy's socket loop was restarted by its
// supervisor: new loops started since the first, each one running by the
// time it is counted.
func (b *base) Restarts() int { return int(max(b.starts.Load()-1, 0)) }

// Refused returns how many connections the proxy refused at their
// handshake (CURVE, ZAP) and how many registrations it did not use.
func (b *base) Refused() (connections, registrations uint64) {
	return b.counters.Refused.Load(), b.counters.Untrusted.Load()
}

// PublicKey returns the proxy's CURVE public key (zero without CURVE).
func (b *base) PublicKey() curve.Key { return b.sec.PublicKey() }

// ReloadAllowList reads the proxy's allow-list file again now, as it does
// by itself every relay.AllowListPoll (for a SIGHUP handler).
func (b *base) ReloadAllowList() error { return b.sec.Reload() }

// Endpoints returns what the proxy registered: "FRONT|BACK" for a router
// proxy, "FRONT|BACK|ack" (or "noack") for a central publisher proxy, the
// republishing endpoint for a local one; with CURVE followed by
// ";curve=" and its public key.
func (b *base) Endpoints() string { return b.member }

// InjectFault makes the proxy's socket loop fail with err as a socket
// error would (actors.Fault): its supervisor restarts it, or, beyond the
// restart intensity, the proxy fails. For tests and chaos tools. It
// returns before the restart; see Restarts.
func (b *base) InjectFault(err error) { b.system.Root.Send(b.pid(), actors.Fault{Err: err}) }

// Crash stops the proxy as kill -9 would: its sockets close at once
// (linger 0) and its registration stops being renewed, but it is not
// unregistered, so clients keep finding it until the registration
// expires. Close still releases what is left. For tests and chaos tools.
func (b *base) Crash() {
	b.cancel()
	b.group.Wait()
	b.stop(0)
}

// stop stops the supervision tree, and with it the socket loop, whose
// sockets may deliver what they hold for linger. Once.
func (b *base) stop(linger time.Duration) {
	b.stopTree.Do(func() {
		if b.tree == nil {
			return
		}
		b.linger.Set(linger)
		if err := b.system.Root.StopFuture(b.tree).Wait(); err != nil {
			b.log.Warn("stop the proxy's actors", "err", err)
		}
	})
}

// Close unregisters the proxy, stops its socket loop (letting its sockets
// deliver what they hold for up to a second), and closes the ZeroMQ
// context and the matchmaker. Idempotent.
func (b *base) Close() error {
	var errs []error
	b.once.Do(func() {
		b.cancel()
		b.failOnce.Do(func() { close(b.stopped) })
		b.group.Close()
		b.group.Wait()
		if b.member != "" {
			if err := b.mm.Unregister(context.Background(), b.key, b.member); err != nil {
				errs = append(errs, err)
			}
		}
		b.stop(time.Second)
		if b.monitor != nil {
			b.monitor.Close()
			b.releaseSystem()
		}
		b.sec.Stop(b.zctx)
		if err := b.zctx.Close(5 * time.Second); err != nil {
			errs = append(errs, err)
		}
		if err := b.mm.Close(); err != nil {
			errs = append(errs, err)
		}
	})
	return errors.Join(errs...)
}
