package matchmaker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"github.com/relay-dev/relay/internal/throttle"
)

// RedisOptions configures NewRedis. Set exactly one of Addr (one server),
// SentinelAddrs with MasterName (a master found through Sentinel), or
// ClusterAddrs (a Redis Cluster).
type RedisOptions struct {
	Addr          string   // host:port of a single Redis server
	SentinelAddrs []string // host:port of each Sentinel
	MasterName    string   // the master the Sentinels monitor
	ClusterAddrs  []string // host:port of some nodes of a Redis Cluster (the others are discovered)
	Username      string   // ACL user of the data nodes; empty for the default user
	Password      string   // password of the data nodes; empty for none
	// SentinelUsername and SentinelPassword are the Sentinels' own
	// credentials (their requirepass or ACL user); empty for none.
	SentinelUsername string
	SentinelPassword string
	DB               int         // database number, 0 by default (a cluster has only 0)
	TLS              *tls.Config // nil: plaintext; else TLS to every node and Sentinel
	// CheckInterval is how often the matchmaker makes sure Redis has not
	// lost its data (see Matchmaker.Lost), besides after every reconnect.
	// 0 means DefaultCheckInterval.
	CheckInterval time.Duration
	// Logger receives trouble the matchmaker handles on its own (change
	// subscription lost or restored, registrations lost). Nil discards.
	Logger *slog.Logger
}

// DefaultCheckInterval is how often a Redis matchmaker checks, by default,
// that Redis still holds its data.
const DefaultCheckInterval = 2 * time.Second

// String describes where the options lead, without any secret:
// "redis 127.0.0.1:6379", "rediss cluster h1:6379,h2:6379 as user relay".
func (o RedisOptions) String() string {
	scheme := "redis"
	if o.TLS != nil {
		scheme = "rediss"
	}
	var s string
	switch {
	case len(o.ClusterAddrs) > 0:
		s = scheme + " cluster " + strings.Join(o.ClusterAddrs, ",")
	case len(o.SentinelAddrs) > 0:
		s = scheme + " sentinel " + o.MasterName + "@" + strings.Join(o.SentinelAddrs, ",")
	default:
		s = scheme + " " + o.Addr
	}
	if o.DB != 0 {
		s += fmt.Sprintf(" db %d", o.DB)
	}
	if o.Username != "" {
		s += " as user " + o.Username
	}
	return s
}

// GoString is String, so that %#v does not print the passwords either.
func (o RedisOptions) GoString() string { return "matchmaker.RedisOptions{" + o.String() + "}" }

// validate checks that o names one deployment.
func (o RedisOptions) validate() error {
	n := 0
	for _, set := range []bool{o.Addr != "", len(o.SentinelAddrs) > 0, len(o.ClusterAddrs) > 0} {
		if set {
			n++
		}
	}
	switch {
	case n == 0:
		return fmt.Errorf("%w: RedisOptions: none of Addr, SentinelAddrs and ClusterAddrs is set", ErrBadURL)
	case n > 1:
		return fmt.Errorf("%w: RedisOptions: set only one of Addr, SentinelAddrs and ClusterAddrs", ErrBadURL)
	case len(o.SentinelAddrs) > 0 && o.MasterName == "":
		return fmt.Errorf("%w: RedisOptions: SentinelAddrs without MasterName", ErrBadURL)
	case len(o.ClusterAddrs) > 0 && o.DB != 0:
		return fmt.Errorf("%w: RedisOptions: a Redis Cluster has only database 0, not %d", ErrBadURL, o.DB)
	case (o.SentinelUsername != "" || o.SentinelPassword != "") && len(o.SentinelAddrs) == 0:
		return fmt.Errorf("%w: RedisOptions: SentinelUsername/SentinelPassword without SentinelAddrs", ErrBadURL)
	}
	return nil
}

// universal is the one place where relay sets go-redis client options,
// whatever the deployment: a single server, Sentinel or Cluster.
func (o RedisOptions) universal() *redis.UniversalOptions {
	u := &redis.UniversalOptions{
		Username:              o.Username,
		Password:              o.Password,
		SentinelUsername:      o.SentinelUsername,
		SentinelPassword:      o.SentinelPassword,
		DB:                    o.DB,
		MasterName:            o.MasterName,
		Dialer:                dialer(o.TLS), // does TLS itself: go-redis ignores TLSConfig when Dialer is set
		MaxRetries:            -1,            // fail fast; retrying is the caller's choice
		DialerRetries:         1,
		Protocol:              2,
		ContextTimeoutEnabled: true,
		DisableIdentity:       true,
		// Maintenance notifications are a Redis Enterprise/Cloud feature
		// that needs RESP3; off for every client (go-redis turns them off
		// for Sentinel clients itself).
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}
	switch {
	case len(o.ClusterAddrs) > 0:
		u.Addrs = o.ClusterAddrs
	case len(o.SentinelAddrs) > 0:
		u.Addrs = o.SentinelAddrs
	default:
		u.Addrs = []string{o.Addr}
	}
	return u
}

// newRedisClient builds the go-redis client of o's deployment from the one
// set of options.
func newRedisClient(o RedisOptions) redis.UniversalClient {
	u := o.universal()
	switch {
	case len(o.ClusterAddrs) > 0:
		return redis.NewClusterClient(u.Cluster())
	case len(o.SentinelAddrs) > 0:
		return redis.NewFailoverClient(u.Failover())
	default:
		return redis.NewClient(u.Simple())
	}
}

// closeOnDone marks the subscription's context: connections dialled under
// it are closed when it is cancelled. go-redis reads do not watch
// cancellation, and a subscription blocked in a read (or in the handshake
// with a Redis that does not answer) would otherwise delay Close by up to
// its read timeout.
type closeOnDone struct{}

// dialer returns the dial function of every go-redis connection: TCP with
// keep-alive, TLS over it when tlsConf is set, and under a closeOnDone
// context a connection whose life is tied to the context. Pooled command
// connections are never tied to a caller's context.
func dialer(tlsConf *tls.Config) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		nd := &net.Dialer{KeepAlive: 15 * time.Second}
		var conn net.Conn
		var err error
		if tlsConf != nil {
			// ServerName, when not configured, is the host dialled: each
			// node of a cluster is checked against its own name.
			td := &tls.Dialer{NetDialer: nd, Config: tlsConf}
			conn, err = td.DialContext(ctx, network, addr)
		} else {
			conn, err = nd.DialContext(ctx, network, addr)
		}
		if err != nil || ctx.Value(closeOnDone{}) == nil {
			return conn, err
		}
		return &ctxConn{Conn: conn, stop: context.AfterFunc(ctx, func() { conn.Close() })}, nil
	}
}

// ctxConn is a connection closed when its context is done.
type ctxConn struct {
	net.Conn
	stop func() bool
}

func (c *ctxConn) Close() error {
	c.stop()
	return c.Conn.Close()
}

// hint says how to fix a Redis error that has a usual cause, or "".
func hint(err error) string {
	msg := err.Error()
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	switch {
	case strings.Contains(msg, "WRONGPASS"), strings.Contains(msg, "NOAUTH"), strings.Contains(msg, "invalid password"):
		return "check the user name and password in the URL (redis://user:password@host)"
	case strings.Contains(msg, "NOPERM"), strings.Contains(msg, "user executing the script can't"):
		return "the ACL user lacks a permission: relay needs keys ~relay:*, channels &relay:* and +@read +@write +@scripting +@pubsub +@connection +time (in a cluster also +cluster|slots +command)"
	case errors.As(err, &unknownCA):
		return "the server's certificate is not signed by a CA this host trusts: give the CA with ?tls_ca=/path/ca.pem"
	case errors.As(err, &hostname):
		return "the server's certificate is for another name: connect by that name or set ?tls_server_name="
	case strings.Contains(msg, "certificate required"), strings.Contains(msg, "bad certificate"):
		return "the server wants a client certificate: add ?tls_cert=/path/cert.pem&tls_key=/path/key.pem"
	case strings.Contains(msg, "first record does not look like a TLS handshake"):
		return "the server does not speak TLS: use redis:// instead of rediss://"
	case strings.Contains(msg, "CLUSTERDOWN"):
		return "the Redis Cluster is down (a primary without a replica to take over?)"
	case strings.Contains(msg, "MOVED"), strings.Contains(msg, "cluster support disabled"):
		return "cluster mode mismatch: use redis+cluster:// for a Redis Cluster and redis:// otherwise"
	}
	return ""
}

// SetRedisLogger sends go-redis's own log lines (connection pool, Sentinel
// and cluster trouble, which go-redis otherwise prints to stderr) to l, as
// Warn records with the line in "detail", at most one a second (the next
// says how many were suppressed: an outage makes one per dial). go-redis has one logger per
// process: the last call wins for every Redis matchmaker of the process, so
// call it once, from main or from whatever owns the process's logging. Nil
// discards them. go-redis's lines carry addresses, never passwords.
func SetRedisLogger(l *slog.Logger) {
	if l == nil {
		redis.SetLogger(redisLog{})
		return
	}
	redis.SetLogger(redisLog{l: throttle.New(l, time.Second)})
}

// redisLog adapts a *slog.Logger to go-redis's logger.
type redisLog struct{ l *throttle.Log }

func (r redisLog) Printf(_ context.Context, format string, v ...any) {
	if r.l == nil {
		return
	}
	r.l.Warn("go-redis", "detail", fmt.Sprintf(format, v...))
}
