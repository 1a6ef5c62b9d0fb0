package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/relay-dev/relay/actors"
	"github.com/relay-dev/relay/curve"
	"github.com/relay-dev/relay/internal/renewal"
	"github.com/relay-dev/relay/internal/security"
	"github.com/relay-dev/relay/matchmaker"
	"github.com/relay-dev/relay/sockets"
)

// proxyBase is what publisher and router proxies share: options with their
// defaults, the matchmaker and ZeroMQ context, the registration and its
// renewal, failure reporting and Close.
type proxyBase struct {
	opts ProxyOptions
	log  *slog.Logger
	mm   matchmaker.Matchmaker
	zctx *sockets.Context
	sec  *security.Security // nil: plaintext
	// counters count refused connections and untrusted registrations.
	counters actors.Counters
	untrust  *actors.ThrottledLog
	refusals *actors.KeyedLog
	key      matchmaker.Key
	member   string // what is registered under key; set once, before maintain starts
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	once     sync.Once

	failOnce sync.Once
	failed   chan error    // receives the socket loop's failure, once
	stopped  chan struct{} // closed at that failure
}

// openProxy fills in o's defaults and opens the matchmaker and the ZeroMQ
// context.
func openProxy(o ProxyOptions, component string) (*proxyBase, error) {
	def := defaultOptions()
	if o.Host == "" {
		o.Host = def.host
	}
	if o.BindAddress == "" {
		o.BindAddress = def.bindAddress
	}
	if o.PortMin == 0 && o.PortMax == 0 {
		o.PortMin, o.PortMax = def.portMin, def.portMax
	}
	if o.RegistrationTTL == 0 {
		o.RegistrationTTL = def.registrationTTL
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	switch {
	case isWildcard(o.BindAddress) && o.Advertise == "":
		return nil, fmt.Errorf("relay: %s: bind address %q listens on every address of this host, but the proxy must register one address that others can reach it at: set Advertise (--advertise) to that address", component, o.BindAddress)
	case isWildcard(o.Advertise):
		return nil, fmt.Errorf("relay: %s: advertise address %q is not an address others can reach: give one address of this host", component, o.Advertise)
	}
	log := o.Logger.With("component", component)
	sec, err := security.New(security.Setup{KeyFile: o.CurveKey, AllowPath: o.CurveAllow, Keys: o.CurveKeys, Allow: o.CurveAllowList}, log)
	if err != nil {
		return nil, fmt.Errorf("relay: %s: curve: %w", component, err)
	}
	mm, err := matchmaker.Open(o.Matchmaker)
	if err != nil {
		return nil, fmt.Errorf("relay: %s: %w", component, err)
	}
	zctx, err := sockets.NewContext()
	if err != nil {
		mm.Close()
		return nil, fmt.Errorf("relay: %s: %w", component, err)
	}
	if err := sec.Start(zctx); err != nil {
		zctx.Close(time.Second)
		mm.Close()
		return nil, fmt.Errorf("relay: %s: curve: %w", component, err)
	}
	b := &proxyBase{opts: o, log: log, mm: mm, zctx: zctx, sec: sec,
		untrust: actors.NewThrottledLog(log, time.Second), refusals: actors.NewKeyedLog(log, time.Second),
		failed: make(chan error, 1), stopped: make(chan struct{})}
	if sec != nil {
		b.wg.Add(1)
		go func() { defer b.wg.Done(); sec.Watch(b.stopped) }() // tracked by b.wg; ends at close
	}
	return b, nil
}

// bind is where the proxy binds by default.
func (b *proxyBase) bind() sockets.Bind {
	return sockets.Bind{Host: b.opts.BindAddress, PortMin: b.opts.PortMin, PortMax: b.opts.PortMax, Advertise: b.opts.Advertise}
}

// options are the proxy's socket options.
func (b *proxyBase) options() sockets.Options {
	o := sockets.DefaultOptions()
	o.Curve = b.sec.Socket()
	return o
}

// refused is the proxy loop's OnRefused: a connection refused at its
// handshake. Runs in the loop's goroutine.
func (b *proxyBase) refused(reason string) {
	b.counters.Refused.Add(1)
	b.refusals.Warn(reason, "connection refused", "reason", reason)
}

// admitted returns the registrations the proxy may use (see
// security.admit).
func (b *proxyBase) admitted(members []string) []string {
	out, _ := b.sec.Admitted(members, &b.counters, b.untrust)
	return out
}

// Refused returns how many connections the proxy refused at their
// handshake (CURVE, ZAP) and how many registrations it did not use.
func (b *proxyBase) Refused() (connections, registrations uint64) {
	return b.counters.Refused.Load(), b.counters.Untrusted.Load()
}

// PublicKey returns the proxy's CURVE public key (zero without CURVE).
func (b *proxyBase) PublicKey() curve.Key { return b.sec.PublicKey() }

// ReloadAllowList reads the proxy's allow-list file again now, as it does
// by itself every AllowListPoll (for a SIGHUP handler); see
// Node.ReloadAllowList.
func (b *proxyBase) ReloadAllowList() error { return b.sec.Reload() }

// fail is the socket loop's OnFail: the proxy unregisters at once (see
// maintain) and Failed tells its owner, so that the process can exit and be
// restarted by its supervisor. Runs in the loop's goroutine.
func (b *proxyBase) fail(err error) {
	b.failOnce.Do(func() {
		b.log.Error("proxy socket loop failed; unregistering", "err", err)
		b.failed <- err
		close(b.stopped)
	})
}

// Failed receives the error that stopped the proxy's socket loop (the proxy
// has unregistered itself then; Close it and start a new one).
func (b *proxyBase) Failed() <-chan error { return b.failed }

// Endpoints returns what the proxy registered: "FRONT|BACK" for a router
// proxy, "FRONT|BACK|ack" (or "noack") for a central publisher proxy, the
// republishing endpoint for a local one; with CURVE followed by
// ";curve=" and its public key.
func (b *proxyBase) Endpoints() string { return b.member }

// announce registers member under key and starts maintain; follow, when not
// nil, runs at every matchmaker change and tick.
func (b *proxyBase) announce(ctx context.Context, key matchmaker.Key, member string, follow func(context.Context)) error {
	b.key, b.member = key, b.sec.Member(member)
	member = b.member
	if err := b.mm.Register(ctx, key, member, b.opts.RegistrationTTL); err != nil {
		return fmt.Errorf("register %s: %w", key, err)
	}
	var bctx context.Context
	bctx, b.cancel = context.WithCancel(context.Background())
	reg := renewal.Loop{MM: b.mm, TTL: b.opts.RegistrationTTL, Log: b.log,
		Entries: func() []matchmaker.Entry { return []matchmaker.Entry{{Key: b.key, Addr: b.member}} }}
	b.wg.Add(2)
	go func() { // tracked by b.wg
		defer b.wg.Done()
		reg.Run(bctx, b.stopped, nil)
	}()
	go b.maintain(bctx, follow) // tracked by b.wg
	b.log.Info("proxy started", "registered", key.String(), "as", member)
	return nil
}

// maintain runs follow at every matchmaker change and tick, and
// unregisters at once when the socket loop fails (the renewal loop keeps the
// registration alive meanwhile). Runs in its own goroutine.
func (b *proxyBase) maintain(ctx context.Context, follow func(context.Context)) {
	defer b.wg.Done()
	tick := time.NewTicker(proxyWatchTick)
	defer tick.Stop()
	for {
		changed := b.mm.Changed()
		if follow != nil {
			follow(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-b.stopped:
			_ = b.mm.Unregister(ctx, b.key, b.member)
			return
		case <-changed:
		case <-tick.C:
		}
	}
}

// close stops maintain, unregisters, runs stop (which stops the socket
// loops), and closes the ZeroMQ context and the matchmaker. Idempotent.
func (b *proxyBase) close(stop func()) error {
	var errs []error
	b.once.Do(func() {
		if b.cancel != nil {
			b.cancel()
		}
		b.failOnce.Do(func() { close(b.stopped) }) // ends the allow-list watch
		b.wg.Wait()
		if b.member != "" {
			if err := b.mm.Unregister(context.Background(), b.key, b.member); err != nil {
				errs = append(errs, err)
			}
		}
		stop()
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
