package matchmaker

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// ErrClosed is returned by a Matchmaker used after Close.
var ErrClosed = errors.New("matchmaker: closed")

// ErrBadURL is wrapped by Open when the URL cannot be used.
var ErrBadURL = errors.New("matchmaker: bad url")

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

// Matchmaker maps keys to the addresses registered under them.
type Matchmaker interface {
	// Register files addr under key for ttl. Registering again renews it.
	Register(ctx context.Context, key Key, addr string, ttl time.Duration) error
	// Unregister removes addr from key.
	Unregister(ctx context.Context, key Key, addr string) error
	// Lookup returns the live addresses under key, sorted.
	Lookup(ctx context.Context, key Key) ([]string, error)
	// Changed returns a channel that is closed at the next change of any
	// registration (a hint to look up again; it may also close spuriously).
	Changed() <-chan struct{}
	// Close releases the matchmaker. It does not unregister anything.
	Close() error
}

// Open returns the matchmaker named by rawURL.
func Open(rawURL string) (Matchmaker, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", ErrBadURL, rawURL, err)
	}
	switch u.Scheme {
	case "memory":
		name := u.Host + u.Path
		if name == "" {
			return nil, fmt.Errorf("%w %q: memory:// needs a registry name, e.g. memory://default", ErrBadURL, rawURL)
		}
		return NewMemory(name), nil
	case "file":
		if u.Path == "" || u.Host != "" {
			return nil, fmt.Errorf("%w %q: file:// needs an absolute path, e.g. file:///etc/relay/hosts.json", ErrBadURL, rawURL)
		}
		return NewFile(u.Path)
	case "redis", "redis+sentinel":
		opts, err := ParseRedisURL(rawURL)
		if err != nil {
			return nil, err // wraps ErrBadURL, names the bad part, hides the password
		}
		return NewRedis(opts)
	default:
		return nil, fmt.Errorf("%w %q: unknown scheme %q (supported: memory://NAME, file:///path/hosts.json, "+
			"redis://[:password@]host:port[/db], redis+sentinel://h1:26379,h2:26379/mastername[/db])", ErrBadURL, rawURL, u.Scheme)
	}
}
