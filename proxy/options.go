package proxy

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/relay-dev/relay/actors"
	"github.com/relay-dev/relay/curve"
	"github.com/relay-dev/relay/internal/security"
	"github.com/relay-dev/relay/sockets"
	"github.com/relay-dev/relay/supervisor"
)

// Option configures a proxy; see StartRouter and StartPublisher for the
// list.
type Option func(*options)

type options struct {
	matchmaker          string
	host                string
	bindAddress         string
	advertise           string
	portMin, portMax    int
	frontend, backend   string
	ack, local          bool
	registrationTTL     time.Duration
	strategy            supervisor.Strategy
	log                 *slog.Logger
	curve               security.Setup
	frontBind, backBind sockets.Bind // frontend and backend, parsed by validate
}

func defaultOptions() options {
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	return options{
		matchmaker:      "memory://default",
		host:            host,
		bindAddress:     "127.0.0.1",
		portMin:         20000,
		portMax:         29999,
		registrationTTL: 30 * time.Second,
		strategy:        supervisor.Default,
		log:             slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// kind is the kind of proxy that options are validated for.
type kind int

const (
	routerKind kind = iota
	publisherKind
)

// newOptions applies opts to the defaults and validates them for a proxy
// of kind k; the error names the option.
func newOptions(k kind, opts []Option) (options, error) {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	return o, o.validate(k)
}

func (o *options) validate(k kind) error {
	bad := func(opt, format string, args ...any) error {
		return fmt.Errorf("proxy: option %s: %s", opt, fmt.Sprintf(format, args...))
	}
	switch {
	case o.host == "":
		return bad("WithHost", "empty host name")
	case o.bindAddress == "":
		return bad("WithBindAddress", "empty address")
	case sockets.Wildcard(o.bindAddress) && o.advertise == "":
		return bad("WithBindAddress", "%q listens on every address of this host, but the proxy must register one address that others can reach it at: set WithAdvertise (--advertise) to that address", o.bindAddress)
	case sockets.Wildcard(o.advertise):
		return bad("WithAdvertise", "%q is not an address others can reach: give one address of this host", o.advertise)
	case o.portMin < 1 || o.portMax > 65535 || o.portMin > o.portMax:
		return bad("WithPortRange", "bad range %d-%d (want 1 <= min <= max <= 65535)", o.portMin, o.portMax)
	case o.registrationTTL < 3*time.Millisecond:
		return bad("WithRegistrationTTL", "must be at least 3ms, got %v", o.registrationTTL)
	case o.log == nil:
		return bad("WithLogger", "nil logger")
	case k == routerKind && o.ack:
		return bad("WithAck", "for publisher proxies only")
	case k == routerKind && o.local:
		return bad("WithLocal", "for publisher proxies only")
	case k == publisherKind && o.frontend != "":
		return bad("WithFrontend", "for router proxies only")
	case k == publisherKind && o.backend != "":
		return bad("WithBackend", "for router proxies only")
	case o.local && o.ack:
		return bad("WithAck", "for central proxies (a local proxy republishes what they accepted)")
	}
	if _, err := url.Parse(o.matchmaker); err != nil {
		return bad("WithMatchmaker", "%v", err)
	}
	if err := o.curve.Check(); err != nil {
		return bad("WithCurve", "%v", err)
	}
	if err := o.strategy.Validate(); err != nil {
		return bad("WithSupervisor", "%v", err)
	}
	o.frontBind, o.backBind = o.bind(), o.bind()
	for _, e := range []struct {
		opt, addr string
		b         *sockets.Bind
	}{{"WithFrontend", o.frontend, &o.frontBind}, {"WithBackend", o.backend, &o.backBind}} {
		if e.addr == "" {
			continue
		}
		host, port, err := net.SplitHostPort(e.addr)
		n, perr := strconv.Atoi(port)
		if err != nil || perr != nil || n <= 0 || n > 65535 {
			return bad(e.opt, "endpoint %q: want HOST:PORT", e.addr)
		}
		*e.b = sockets.Bind{Host: host, Port: n, Retry: rebindRetry, Advertise: o.advertise}
	}
	return nil
}

// bind is where the proxy binds by default: the bind address, a port of
// the range.
func (o *options) bind() sockets.Bind {
	return sockets.Bind{Host: o.bindAddress, PortMin: o.portMin, PortMax: o.portMax, Advertise: o.advertise}
}

// rebindRetry is how long a socket binding a fixed port waits for it to
// be free: the port a restarted loop's predecessor just closed.
const rebindRetry = 2 * time.Second

// rebind makes b bind the port a loop bound, for the loop that replaces
// it: the registration names that port.
func rebind(b *sockets.Bind, port int) { b.Port, b.Retry = port, rebindRetry }

// frontBack is a loop bound on a frontend and a backend.
type frontBack interface {
	actors.Loop
	Ports() (front, back int)
	Endpoints() (front, back string)
}

// twoPorts is the Start of a socket actor whose loops (start) bind front
// and back: each loop's ports are bound again by the loop that replaces
// it, since the registration names them, and first gets the first loop's
// endpoints. Called by the actor's goroutine only.
func twoPorts[L frontBack](front, back *sockets.Bind, start func(onFail func(error)) (L, error), first func(front, back string)) func(onFail func(error)) (actors.Loop, error) {
	return func(onFail func(error)) (actors.Loop, error) {
		l, err := start(onFail)
		if err != nil {
			return nil, err
		}
		fp, bp := l.Ports()
		rebind(front, fp)
		rebind(back, bp)
		if first != nil {
			first(l.Endpoints())
			first = nil
		}
		return l, nil
	}
}

// WithMatchmaker selects the name service the proxy registers in, by URL
// (see relay.WithMatchmaker). Default "memory://default".
func WithMatchmaker(url string) Option { return func(o *options) { o.matchmaker = url } }

// WithHost sets the host a local publisher proxy serves (WithLocal).
// Default os.Hostname().
func WithHost(name string) Option { return func(o *options) { o.host = name } }

// WithBindAddress sets the address the proxy binds, and advertises unless
// WithAdvertise says otherwise. A wildcard ("0.0.0.0") needs WithAdvertise.
// Default "127.0.0.1".
func WithBindAddress(addr string) Option { return func(o *options) { o.bindAddress = addr } }

// WithAdvertise sets the address the proxy registers when it is not the
// bind address. Default: the bind address.
func WithAdvertise(addr string) Option { return func(o *options) { o.advertise = addr } }

// WithPortRange sets the ports the proxy may bind; a busy port is skipped.
// Default 20000-29999.
func WithPortRange(min, max int) Option {
	return func(o *options) { o.portMin, o.portMax = min, max }
}

// WithFrontend fixes a router proxy's frontend (for clients), "HOST:PORT".
// Default: the bind address and a port of the range.
func WithFrontend(hostPort string) Option { return func(o *options) { o.frontend = hostPort } }

// WithBackend fixes a router proxy's backend (for servers), "HOST:PORT".
// Default: the bind address and a port of the range.
func WithBackend(hostPort string) Option { return func(o *options) { o.backend = hostPort } }

// WithAck makes a central publisher proxy acknowledge each message it
// published, and answer "NoSubscribers" when no subscriber would get it.
// Default false.
func WithAck(on bool) Option { return func(o *options) { o.ack = on } }

// WithLocal makes a publisher proxy a local one: it subscribes to every
// central proxy and republishes on its host (WithHost), whose nodes
// connect to it instead (two-level fanout). Default false.
func WithLocal(on bool) Option { return func(o *options) { o.local = on } }

// WithRegistrationTTL sets how long the proxy's registration lives without
// renewal; it is renewed every third of it. Default 30s.
func WithRegistrationTTL(d time.Duration) Option {
	return func(o *options) { o.registrationTTL = d }
}

// WithSupervisor sets the strategy that supervises the proxy's socket
// actor: a failed loop restarts in place up to its restart intensity;
// beyond it the proxy fails (Failed). Default supervisor.Default.
func WithSupervisor(s supervisor.Strategy) Option { return func(o *options) { o.strategy = s } }

// WithLogger sets the logger. Default: discard.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithCurve turns CURVE on, as relay.WithCurve does for a node: keyFile is
// the proxy's secret key file, allowPath a file or directory of the public
// keys it admits on both sides (and, for a local proxy, the central
// proxies it trusts). The proxy registers its public key. Default: off.
func WithCurve(keyFile, allowPath string) Option {
	return func(o *options) { o.curve = security.Setup{KeyFile: keyFile, AllowPath: allowPath} }
}

// WithCurveKeys is WithCurve with the key pair and the allow-list in
// memory.
func WithCurveKeys(keys curve.KeyPair, allow *curve.AllowList) Option {
	return func(o *options) { o.curve = security.Setup{Keys: &keys, Allow: allow} }
}
