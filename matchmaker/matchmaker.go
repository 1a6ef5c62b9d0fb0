package matchmaker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"
)

// ErrClosed is returned by a Matchmaker used after Close.
var ErrClosed = errors.New("matchmaker: closed")

// ErrBadURL is wrapped by Open when the URL cannot be used.
var ErrBadURL = errors.New("matchmaker: bad url")

// ErrMatchmaker is wrapped by every error of Register, RegisterMany,
// Unregister, Lookup and List that the name service caused: it could not be
// reached, did not answer in time, or refused (authentication, a cluster
// that is down). Callers keep using what they know (cached routes) and try
// again; errors.Is(err, context.DeadlineExceeded) also holds when ctx ran
// out while waiting for it.
var ErrMatchmaker = errors.New("matchmaker: name service unavailable")

// Key is what a registration is filed under.
type Key struct {
	Exchange string
	Topic    string
	Server   string // empty for the bare topic
}

// String renders the key as "exchange/topic" or "exchange/topic/server".
func (k Key) String() string {
	var b strings.Builder
	b.WriteString(k.Exchange)
	b.WriteByte('/')
	b.WriteString(k.Topic)
	if k.Server != "" {
		b.WriteByte('/')
		b.WriteString(k.Server)
	}
	return b.String()
}

// Entry is one address to file under a key, for RegisterMany.
type Entry struct {
	Key  Key
	Addr string
}

// Matchmaker maps keys to the addresses registered under them.
type Matchmaker interface {
	// Register files addr under key for ttl. Registering again renews it.
	Register(ctx context.Context, key Key, addr string, ttl time.Duration) error
	// RegisterMany registers (or renews) every entry for ttl in one round
	// trip to the name service (one per cluster node), and announces new
	// entries with one change notice: a node with many targets, or many
	// nodes starting together, should use it. Entries that failed are
	// named in the error; the others are registered.
	RegisterMany(ctx context.Context, entries []Entry, ttl time.Duration) error
	// Unregister removes addr from key.
	Unregister(ctx context.Context, key Key, addr string) error
	// Lookup returns the live addresses under key, sorted.
	Lookup(ctx context.Context, key Key) ([]string, error)
	// Changed returns a channel that is closed at the next change of any
	// registration (a hint to look up again; it may also close spuriously).
	Changed() <-chan struct{}
	// Lost returns a channel that is closed when the name service may have
	// lost registrations it held (Redis restarted with an empty dataset,
	// was flushed, or failed over): whoever registered something should
	// register it again at once rather than at its next renewal. A new
	// channel is made for the next loss, so take it before registering.
	// Memory and File never lose anything; their channel never closes.
	Lost() <-chan struct{}
	// Close releases the matchmaker. It does not unregister anything.
	Close() error
}

// Option configures Open.
type Option func(*options)

type options struct {
	log *slog.Logger
}

// WithLogger gives the matchmaker a logger for trouble it handles on its own
// (a lost change subscription, registrations lost by Redis). The default
// discards. Messages never carry a password.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// Open returns the matchmaker named by rawURL:
//
//	memory://NAME
//	file:///path/hosts.json
//	redis://[[user]:password@]host[:port][/db][?tls options]    (rediss:// for TLS)
//	redis+sentinel://[[user]:password@]h1[:port],h2/master[/db][?sentinel_user=U&sentinel_password=P]
//	redis+cluster://[[user]:password@]h1:port,h2:port,...
//
// See ParseRedisURL for the Redis forms. Errors wrap ErrBadURL, name the
// part of the URL that is wrong and never show a password.
func Open(rawURL string, opts ...Option) (Matchmaker, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	scheme, _, _ := strings.Cut(rawURL, "://")
	switch scheme {
	case "memory", "file":
	default:
		if isRedisScheme(scheme) {
			ro, err := ParseRedisURL(rawURL)
			if err != nil {
				return nil, err // wraps ErrBadURL, names the bad part, hides the password
			}
			ro.Logger = o.log
			return NewRedis(ro)
		}
		return nil, fmt.Errorf("%w %q: unknown scheme %q (supported: memory://NAME, file:///path/hosts.json, "+
			"redis://[[user]:password@]host:port[/db], rediss://… (TLS), "+
			"redis+sentinel://h1:26379,h2:26379/mastername[/db], redis+cluster://h1:port,h2:port,…)",
			ErrBadURL, Redact(rawURL), scheme)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", ErrBadURL, Redact(rawURL), redactErr(err))
	}
	if u.Scheme == "memory" {
		name := u.Host + u.Path
		if name == "" {
			return nil, fmt.Errorf("%w %q: memory:// needs a registry name, e.g. memory://default", ErrBadURL, rawURL)
		}
		return NewMemory(name), nil
	}
	if u.Path == "" || u.Host != "" {
		return nil, fmt.Errorf("%w %q: file:// needs an absolute path, e.g. file:///etc/relay/hosts.json", ErrBadURL, rawURL)
	}
	return NewFile(u.Path)
}

// never is the Lost channel of matchmakers that cannot lose registrations.
var never = make(chan struct{})
