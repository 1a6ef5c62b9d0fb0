package matchmaker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/relay-dev/relay/internal/track"
)

// RedisChangesChannel is the Redis pub/sub channel on which every change of
// a registration is announced, with the changed key's Redis name as payload.
const RedisChangesChannel = "relay:changes"

// redisKeyPrefix prefixes the Redis name of every key: relay:<Key.String()>.
const redisKeyPrefix = "relay:"

// redisHealthCheck is how long the subscription waits for a message before
// it pings Redis to find out whether the connection is still alive.
const redisHealthCheck = 3 * time.Second

// redisRetryBackoff is how long the subscription waits before it tries
// again after an error.
const redisRetryBackoff = 200 * time.Millisecond

// RedisOptions configures NewRedis. Set Addr for a single server, or
// SentinelAddrs and MasterName for a Sentinel-managed master.
type RedisOptions struct {
	Addr          string   // host:port of a single Redis server
	SentinelAddrs []string // host:port of each Sentinel
	MasterName    string   // the master the Sentinels monitor
	Username      string   // ACL user of the master; empty for the default user
	Password      string   // password of the master; empty for none
	DB            int      // database number, 0 by default
	// Logger receives subscription trouble (lost, restored). Nil discards.
	Logger *slog.Logger
}

// ParseRedisURL parses
//
//	redis://[[user]:password@]host[:port][/db]
//	redis+sentinel://[[user]:password@]h1[:port],h2[:port]/mastername[/db]
//
// The port defaults to 6379 for redis:// and 26379 for Sentinels; db to 0.
// The user and password are the master's. Errors wrap ErrBadURL and name the
// part of the URL that is wrong.
func ParseRedisURL(raw string) (RedisOptions, error) {
	var o RedisOptions
	bad := func(format string, args ...any) (RedisOptions, error) {
		return RedisOptions{}, fmt.Errorf("%w %q: "+format, append([]any{ErrBadURL, redactURL(raw)}, args...)...)
	}
	// url.Parse rejects a host list such as "h1,h2:26379"; take it out
	// and parse the rest with a placeholder host.
	toParse, sentinelHosts := raw, ""
	if rest, ok := strings.CutPrefix(raw, "redis+sentinel://"); ok {
		end := strings.IndexAny(rest, "/?#")
		if end < 0 {
			end = len(rest)
		}
		authority := rest[:end]
		userinfo := ""
		if at := strings.LastIndex(authority, "@"); at >= 0 {
			userinfo, authority = authority[:at+1], authority[at+1:]
		}
		sentinelHosts = authority
		toParse = "redis+sentinel://" + userinfo + "sentinels" + rest[end:]
	}
	u, err := url.Parse(toParse)
	if err != nil {
		return bad("%v", redactErr(err, raw))
	}
	if u.User != nil {
		o.Username = u.User.Username()
		o.Password, _ = u.User.Password()
	}
	if len(u.Query()) > 0 {
		return bad("query parameters are not supported (%q)", u.RawQuery)
	}
	if u.Fragment != "" {
		return bad("fragment %q is not supported", u.Fragment)
	}
	path := strings.Trim(u.Path, "/")
	var parts []string
	if path != "" {
		parts = strings.Split(path, "/")
	}
	parseDB := func(s string) error {
		db, err := strconv.Atoi(s)
		if err != nil || db < 0 {
			return fmt.Errorf("database %q in the path is not a number >= 0", s)
		}
		o.DB = db
		return nil
	}
	switch u.Scheme {
	case "redis":
		addr, err := hostPort(u.Host, "6379")
		if err != nil {
			return bad("host: %v", err)
		}
		o.Addr = addr
		switch len(parts) {
		case 0:
		case 1:
			if err := parseDB(parts[0]); err != nil {
				return bad("%v", err)
			}
		default:
			return bad("path %q: want at most /db", u.Path)
		}
	case "redis+sentinel":
		if sentinelHosts == "" {
			return bad("host: no sentinel addresses (want h1:26379,h2:26379)")
		}
		for _, h := range strings.Split(sentinelHosts, ",") {
			addr, err := hostPort(h, "26379")
			if err != nil {
				return bad("sentinel host: %v", err)
			}
			o.SentinelAddrs = append(o.SentinelAddrs, addr)
		}
		switch len(parts) {
		case 0:
			return bad("path: no master name (want redis+sentinel://h1:26379,h2:26379/mastername)")
		case 1:
		case 2:
			if err := parseDB(parts[1]); err != nil {
				return bad("%v", err)
			}
		default:
			return bad("path %q: want /mastername[/db]", u.Path)
		}
		o.MasterName = parts[0]
	default:
		return bad("scheme %q is not redis or redis+sentinel", u.Scheme)
	}
	return o, nil
}

// hostPort validates host[:port], adding the default port when it is missing.
func hostPort(h, defaultPort string) (string, error) {
	if h == "" {
		return "", errors.New("empty")
	}
	host, port, err := net.SplitHostPort(h)
	if err != nil {
		// No port (or a bare IPv6 address in brackets).
		host, port = strings.Trim(h, "[]"), defaultPort
		if strings.ContainsAny(host, ":[]") && !strings.HasPrefix(h, "[") {
			return "", fmt.Errorf("%q: %v", h, err)
		}
	}
	if host == "" {
		return "", fmt.Errorf("%q: no host name", h)
	}
	if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		return "", fmt.Errorf("%q: port %q is not a number from 1 to 65535", h, port)
	}
	return net.JoinHostPort(host, port), nil
}

// redactURL hides the password of raw, for error messages.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		if i, j := strings.Index(raw, "://"), strings.LastIndex(raw, "@"); i >= 0 && j > i {
			return raw[:i+3] + "xxxxx" + raw[j:]
		}
		return raw
	}
	return u.Redacted()
}

// redactErr rewrites a url.Parse error so that it does not repeat raw (which
// may hold a password).
func redactErr(err error, raw string) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return errors.New(strings.ReplaceAll(err.Error(), raw, redactURL(raw)))
}

// Redis is a matchmaker kept in Redis (a single server, or a master found
// through Sentinel), shared by every process that opens the same Redis.
//
// Each key is a sorted set relay:<exchange>/<topic>[/<server>] whose members
// are addresses scored by their expiry time (unix ms, by the Redis server's
// clock), so liveness is per member. Changes are announced on
// RedisChangesChannel; one goroutine per Redis value listens and closes the
// Changed channel.
type Redis struct {
	client *redis.Client
	where  string // "redis 127.0.0.1:6379" or "redis sentinel mymaster@h1:26379,h2:26379"
	log    *slog.Logger
	pubsub *redis.PubSub
	cancel context.CancelFunc // stops the subscription goroutine
	group  track.Group

	// mu guards the fields below.
	mu      sync.Mutex
	changed chan struct{}
	closed  bool
}

var _ Matchmaker = (*Redis)(nil)

// NewRedis returns a matchmaker on the Redis described by opts. It does not
// wait for Redis: commands dial on demand (and fail, naming the address,
// while Redis is unreachable), and the change subscription connects in the
// background and keeps reconnecting until Close.
func NewRedis(opts RedisOptions) (*Redis, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	noMaint := &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	r := &Redis{changed: make(chan struct{})}
	switch {
	case opts.Addr != "" && len(opts.SentinelAddrs) > 0:
		return nil, fmt.Errorf("%w: RedisOptions: set Addr or SentinelAddrs, not both", ErrBadURL)
	case opts.Addr != "":
		r.where = "redis " + opts.Addr
		r.client = redis.NewClient(&redis.Options{
			Addr:                     opts.Addr,
			Username:                 opts.Username,
			Password:                 opts.Password,
			DB:                       opts.DB,
			Dialer:                   dial,
			MaxRetries:               -1, // fail fast; retrying is the caller's choice
			DialerRetries:            1,
			Protocol:                 2,
			ContextTimeoutEnabled:    true,
			DisableIdentity:          true,
			MaintNotificationsConfig: noMaint,
		})
	case len(opts.SentinelAddrs) > 0:
		if opts.MasterName == "" {
			return nil, fmt.Errorf("%w: RedisOptions: SentinelAddrs without MasterName", ErrBadURL)
		}
		r.where = "redis sentinel " + opts.MasterName + "@" + strings.Join(opts.SentinelAddrs, ",")
		r.client = redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName:            opts.MasterName,
			SentinelAddrs:         opts.SentinelAddrs,
			Username:              opts.Username,
			Password:              opts.Password,
			DB:                    opts.DB,
			Dialer:                dial,
			MaxRetries:            -1, // fail fast; retrying is the caller's choice
			DialerRetries:         1,
			Protocol:              2,
			ContextTimeoutEnabled: true,
			DisableIdentity:       true,
		})
	default:
		return nil, fmt.Errorf("%w: RedisOptions: neither Addr nor SentinelAddrs is set", ErrBadURL)
	}
	r.log = log.With("component", "matchmaker", "redis", r.where)
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), closeOnDone{}, true))
	r.cancel = cancel
	r.pubsub = r.client.Subscribe(ctx) // no channel yet: does not dial
	if err := r.group.Go(func() { r.subscription(ctx) }); err != nil {
		cancel()
		_ = r.pubsub.Close()
		_ = r.client.Close()
		return nil, err
	}
	return r, nil
}

// closeOnDone marks the subscription's context: connections dialled under
// it are closed when it is cancelled. go-redis reads do not watch
// cancellation, and a subscription blocked in a read (or in the handshake
// with a Redis that does not answer) would otherwise delay Close by up to
// its read timeout.
type closeOnDone struct{}

// dial dials addr; under a closeOnDone context it ties the connection's life
// to the context. Pooled command connections are never tied to a caller's
// context.
func dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil || ctx.Value(closeOnDone{}) == nil {
		return conn, err
	}
	return &ctxConn{Conn: conn, stop: context.AfterFunc(ctx, func() { conn.Close() })}, nil
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

// redisKey is the Redis name of key.
func redisKey(key Key) string { return redisKeyPrefix + key.String() }

// registerScript adds or renews ARGV[1] in the sorted set KEYS[1] with the
// score now+ARGV[2] ms by the server's clock, extends the set's own expiry
// (garbage collection only) to at least twice the TTL, and announces a new
// member on ARGV[3]. It returns 1 for a new member, 0 for a renewal.
var registerScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
local added = redis.call('ZADD', KEYS[1], string.format('%d', now + ttl), ARGV[1])
local keep = 2 * ttl
if redis.call('PTTL', KEYS[1]) < keep then
	redis.call('PEXPIRE', KEYS[1], string.format('%d', keep))
end
if added == 1 then
	redis.call('PUBLISH', ARGV[3], KEYS[1])
end
return added
`)

// unregisterScript removes ARGV[1] from KEYS[1] and announces it on ARGV[2]
// if it was there. It returns the number of members removed.
var unregisterScript = redis.NewScript(`
local n = redis.call('ZREM', KEYS[1], ARGV[1])
if n > 0 then
	redis.call('PUBLISH', ARGV[2], KEYS[1])
end
return n
`)

// lookupScript returns {expired, live...}: the members of KEYS[1] whose
// expiry is after now (server clock), after removing the expired ones (and
// announcing their removal on ARGV[1]).
var lookupScript = redis.NewScript(`
local t = redis.call('TIME')
local now = string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
local live = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')
local gone = redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if gone > 0 then
	redis.call('PUBLISH', ARGV[1], KEYS[1])
end
table.insert(live, 1, tostring(gone))
return live
`)

// Register implements Matchmaker. ttl is rounded up to whole milliseconds.
func (r *Redis) Register(ctx context.Context, key Key, addr string, ttl time.Duration) error {
	if err := r.check(); err != nil {
		return err
	}
	if ttl <= 0 {
		return fmt.Errorf("matchmaker: %s: register %s: ttl %v is not positive", r.where, key, ttl)
	}
	ms := (ttl + time.Millisecond - 1) / time.Millisecond
	added, err := registerScript.Run(ctx, r.client, []string{redisKey(key)}, addr, int64(ms), RedisChangesChannel).Int()
	if err != nil {
		return r.fail(ctx, "register", key, err)
	}
	if added == 1 {
		r.notify() // do not wait for our own notice to come back
	}
	return nil
}

// Unregister implements Matchmaker.
func (r *Redis) Unregister(ctx context.Context, key Key, addr string) error {
	if err := r.check(); err != nil {
		return err
	}
	n, err := unregisterScript.Run(ctx, r.client, []string{redisKey(key)}, addr, RedisChangesChannel).Int()
	if err != nil {
		return r.fail(ctx, "unregister", key, err)
	}
	if n > 0 {
		r.notify()
	}
	return nil
}

// Lookup implements Matchmaker. Members found expired are removed, and
// Changed is closed so that caches drop them.
func (r *Redis) Lookup(ctx context.Context, key Key) ([]string, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	reply, err := lookupScript.Run(ctx, r.client, []string{redisKey(key)}, RedisChangesChannel).StringSlice()
	if err != nil {
		return nil, r.fail(ctx, "lookup", key, err)
	}
	if len(reply) == 0 {
		return nil, r.fail(ctx, "lookup", key, errors.New("empty reply from lookup script"))
	}
	if reply[0] != "0" {
		r.notify()
	}
	addrs := reply[1:]
	slices.Sort(addrs)
	return addrs, nil
}

// Changed implements Matchmaker. The channel also closes when the
// subscription to change notices was lost or restored (notices may have
// been missed), and at Close.
func (r *Redis) Changed() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changed
}

// Close implements Matchmaker: it stops the subscription goroutine, waits
// for it and closes the client. It is idempotent.
func (r *Redis) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()

	r.cancel()
	_ = r.pubsub.Close() // unblocks a pending receive
	r.group.Close()
	r.group.Wait()
	err := r.client.Close()
	r.notify() // wake waiters; they will find ErrClosed
	if err != nil {
		return fmt.Errorf("matchmaker: %s: close: %w", r.where, err)
	}
	return nil
}

func (r *Redis) check() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	return nil
}

// notify closes the current Changed channel and starts a new one.
func (r *Redis) notify() {
	r.mu.Lock()
	defer r.mu.Unlock()
	close(r.changed)
	r.changed = make(chan struct{})
}

// fail wraps err from op on key with where it happened. If ctx is done and
// err does not already say so, ctx's error is wrapped too.
func (r *Redis) fail(ctx context.Context, op string, key Key, err error) error {
	if errors.Is(err, redis.ErrClosed) && r.check() != nil {
		return ErrClosed
	}
	cerr := ctx.Err()
	if dl, ok := ctx.Deadline(); ok && cerr == nil && !time.Now().Before(dl) {
		cerr = context.DeadlineExceeded // the read deadline fired just before ctx's timer
	}
	if cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("matchmaker: %s: %s %s: %w (%w)", r.where, op, key, err, cerr)
	}
	return fmt.Errorf("matchmaker: %s: %s %s: %w", r.where, op, key, err)
}

// subscription receives change notices until ctx is cancelled, closing
// Changed at each. After any failure it closes Changed (notices may have
// been lost) and tries again; go-redis reconnects and resubscribes.
//
// Runs in its own goroutine.
func (r *Redis) subscription(ctx context.Context) {
	subscribed := false // a subscription has been confirmed before
	down := false       // the last receive failed (logged once per outage)
	// Subscribe records the channel even when it cannot connect; the
	// receives below then reconnect and resubscribe.
	_ = r.pubsub.Subscribe(ctx, RedisChangesChannel)
	for {
		msg, err := r.pubsub.ReceiveTimeout(ctx, redisHealthCheck)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && !down {
				// Quiet channel: make sure the connection is alive. A failed
				// ping makes go-redis reconnect; the next receive tells.
				_ = r.pubsub.Ping(ctx)
				continue
			}
			if !down {
				r.log.Warn("change subscription lost", "err", err)
				down = true
			}
			r.notify()
			t := time.NewTimer(redisRetryBackoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind != "subscribe" {
				continue
			}
			if down || subscribed {
				// Resubscribed after a reconnect: notices may have been missed.
				r.log.Info("change subscription restored")
				r.notify()
			}
			subscribed, down = true, false
		case *redis.Message:
			r.notify()
		}
	}
}

// List implements Lister: every member of every relay key whose expiry is
// still ahead, by the Redis server's clock.
func (r *Redis) List(ctx context.Context) ([]Registration, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	now, err := r.client.Time(ctx).Result()
	if err != nil {
		return nil, r.fail(ctx, "list", Key{}, err)
	}
	var regs []Registration
	iter := r.client.Scan(ctx, 0, redisKeyPrefix+"*", 256).Iterator()
	for iter.Next(ctx) {
		name := iter.Val()
		key, err := ParseKey(strings.TrimPrefix(name, redisKeyPrefix))
		if err != nil {
			continue // not one of ours
		}
		members, err := r.client.ZRangeWithScores(ctx, name, 0, -1).Result()
		if err != nil {
			return nil, r.fail(ctx, "list", key, err)
		}
		for _, z := range members {
			exp := time.UnixMilli(int64(z.Score))
			if !exp.After(now) {
				continue
			}
			addr, _ := z.Member.(string)
			// Report the expiry on this machine's clock.
			regs = append(regs, Registration{Key: key, Addr: addr, Expires: time.Now().Add(exp.Sub(now))})
		}
	}
	if err := iter.Err(); err != nil {
		return nil, r.fail(ctx, "list", Key{}, err)
	}
	sortRegistrations(regs)
	return regs, nil
}
