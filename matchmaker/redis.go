package matchmaker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/relay-dev/relay/internal/track"
)

// RedisChangesChannel is the Redis pub/sub channel on which every change of
// a registration is announced, with the changed key's Redis name as payload
// (or "batch" for a RegisterMany). In a Redis Cluster it is a classic
// (not sharded) channel: a PUBLISH on any node reaches the subscribers of
// every node.
const RedisChangesChannel = "relay:changes"

// redisKeyPrefix prefixes the Redis name of every key: relay:<Key.String()>.
const redisKeyPrefix = "relay:"

// redisHealthCheck is how long the subscription waits for a message before
// it pings Redis to find out whether the connection is still alive.
const redisHealthCheck = 3 * time.Second

// redisRetryBackoff is how long the subscription waits before it tries
// again after an error.
const redisRetryBackoff = 200 * time.Millisecond

// Redis is a matchmaker kept in Redis (a single server, a master found
// through Sentinel, or a Redis Cluster), shared by every process that opens
// the same Redis.
//
// Each key is a sorted set relay:<exchange>/<topic>[/<server>] whose members
// are addresses scored by their expiry time (unix ms, by the Redis server's
// clock), so liveness is per member. Every script touches exactly one key,
// so in a cluster each key lives in its own slot and no hash tags are
// needed; a RegisterMany is one pipeline that go-redis splits per node.
// Changes are announced on RedisChangesChannel; one goroutine per Redis
// value listens and closes the Changed channel, and another checks that
// Redis has not lost its data (see Lost).
type Redis struct {
	client     redis.UniversalClient
	cluster    *redis.ClusterClient // nil unless a cluster
	where      string               // RedisOptions.String(): no secrets
	log        *slog.Logger
	pubsub     *redis.PubSub
	cancel     context.CancelFunc // stops the goroutines
	group      track.Group
	checkEvery time.Duration
	noCert     bool          // TLS without a client certificate
	kick       chan struct{} // capacity 1: check for lost data now
	failing    atomic.Bool   // the last command failed; the next success kicks a check

	// mu guards the fields below.
	mu      sync.Mutex
	changed chan struct{}
	lost    chan struct{}
	closed  bool
	// checks counts the loss checks started; checked is the number of the
	// last one finished, and checkDone closes (and is replaced) at each.
	checks, checked int64
	checkDone       chan struct{}
}

var _ Matchmaker = (*Redis)(nil)

// NewRedis returns a matchmaker on the Redis described by opts. It does not
// wait for Redis: commands dial on demand (and fail, naming the address,
// while Redis is unreachable), and the change subscription and the loss
// check connect in the background and keep retrying until Close.
func NewRedis(opts RedisOptions) (*Redis, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	r := &Redis{
		client:     newRedisClient(opts),
		where:      opts.String(),
		checkEvery: opts.CheckInterval,
		noCert:     opts.TLS != nil && len(opts.TLS.Certificates) == 0 && opts.TLS.GetClientCertificate == nil,
		kick:       make(chan struct{}, 1),
		changed:    make(chan struct{}),
		lost:       make(chan struct{}),
		checkDone:  make(chan struct{}),
	}
	if r.checkEvery <= 0 {
		r.checkEvery = DefaultCheckInterval
	}
	r.cluster, _ = r.client.(*redis.ClusterClient)
	r.log = log.With("component", "matchmaker", "redis", r.where)
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), closeOnDone{}, true))
	r.cancel = cancel
	r.pubsub = r.client.Subscribe(ctx) // no channel yet: does not dial
	for _, loop := range []func(context.Context){r.subscription, r.watchLoss} {
		if err := r.group.Go(func() { loop(ctx) }); err != nil {
			r.Close()
			return nil, err
		}
	}
	return r, nil
}

// String describes the Redis it uses, without secrets:
// "redis 127.0.0.1:6379", "rediss cluster h1:6379,h2:6379 as user relay".
func (r *Redis) String() string { return r.where }

// redisKey is the Redis name of key.
func redisKey(key Key) string { return redisKeyPrefix + key.String() }

// registerScript adds or renews ARGV[1] in the sorted set KEYS[1] with the
// score now+ARGV[2] ms by the server's clock, extends the set's own expiry
// (garbage collection only) to at least twice the TTL, and announces a new
// member on ARGV[3] unless ARGV[3] is empty. It returns 1 for a new member,
// 0 for a renewal.
var registerScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
local added = redis.call('ZADD', KEYS[1], string.format('%d', now + ttl), ARGV[1])
local keep = 2 * ttl
if redis.call('PTTL', KEYS[1]) < keep then
	redis.call('PEXPIRE', KEYS[1], string.format('%d', keep))
end
if added == 1 and ARGV[3] ~= '' then
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

// ttlMillis checks ttl and rounds it up to whole milliseconds.
func (r *Redis) ttlMillis(op string, ttl time.Duration) (int64, error) {
	if ttl <= 0 {
		return 0, fmt.Errorf("matchmaker: %s: %s: ttl %v is not positive", r.where, op, ttl)
	}
	return int64((ttl + time.Millisecond - 1) / time.Millisecond), nil
}

// Register implements Matchmaker. ttl is rounded up to whole milliseconds.
func (r *Redis) Register(ctx context.Context, key Key, addr string, ttl time.Duration) error {
	if err := r.check(); err != nil {
		return err
	}
	ms, err := r.ttlMillis("register "+key.String(), ttl)
	if err != nil {
		return err
	}
	added, err := registerScript.Run(ctx, r.client, []string{redisKey(key)}, addr, ms, RedisChangesChannel).Int()
	if err != nil {
		return r.fail(ctx, "register "+key.String(), err)
	}
	r.succeeded()
	if added == 1 {
		r.notify() // do not wait for our own notice to come back
	}
	return nil
}

// RegisterMany implements Matchmaker: one pipeline of register scripts
// (one round trip per Redis node), then one change notice if any entry was
// new. ttl is rounded up to whole milliseconds.
func (r *Redis) RegisterMany(ctx context.Context, entries []Entry, ttl time.Duration) error {
	if err := r.check(); err != nil {
		return err
	}
	ms, err := r.ttlMillis("register many", ttl)
	if err != nil || len(entries) == 0 {
		return err
	}
	calls := make([]scriptCall, len(entries))
	for i, e := range entries {
		calls[i] = scriptCall{key: redisKey(e.Key), args: []any{e.Addr, ms, ""}}
	}
	cmds := r.runScripts(ctx, registerScript, calls)
	added, failed := 0, 0
	var first error
	var firstKey Key
	for i, cmd := range cmds {
		n, err := cmd.Int()
		if err != nil {
			if failed == 0 {
				first, firstKey = err, entries[i].Key
			}
			failed++
			continue
		}
		added += n
	}
	if failed > 0 {
		err = r.fail(ctx, fmt.Sprintf("register: %d of %d entries failed, the first %s", failed, len(entries), firstKey), first)
	} else {
		r.succeeded()
	}
	if added > 0 {
		r.notify()
		if perr := r.client.Publish(ctx, RedisChangesChannel, "batch").Err(); perr != nil && err == nil {
			err = r.fail(ctx, "register: announce the new entries", perr)
		}
	}
	return err
}

// scriptCall is one run of a script: its key and arguments.
type scriptCall struct {
	key  string
	args []any
}

// runScripts runs s once per call in one pipeline (go-redis splits it per
// cluster node), loading the script first where Redis does not know it
// (after a restart). Each call's outcome is its Cmd's: in a cluster some
// may fail (a node down) while the others worked.
func (r *Redis) runScripts(ctx context.Context, s *redis.Script, calls []scriptCall) []*redis.Cmd {
	cmds := make([]*redis.Cmd, len(calls))
	exec := func(idx []int) {
		pipe := r.client.Pipeline()
		for _, i := range idx {
			cmds[i] = s.EvalSha(ctx, pipe, []string{calls[i].key}, calls[i].args...)
		}
		_, _ = pipe.Exec(ctx) // every Cmd carries its own error
	}
	all := make([]int, len(calls))
	for i := range all {
		all[i] = i
	}
	exec(all)
	var again []int
	for i, cmd := range cmds {
		if redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
			again = append(again, i)
		}
	}
	if len(again) > 0 && s.Load(ctx, r.client).Err() == nil { // every primary, in a cluster
		exec(again)
	}
	return cmds
}

// Unregister implements Matchmaker.
func (r *Redis) Unregister(ctx context.Context, key Key, addr string) error {
	if err := r.check(); err != nil {
		return err
	}
	n, err := unregisterScript.Run(ctx, r.client, []string{redisKey(key)}, addr, RedisChangesChannel).Int()
	if err != nil {
		return r.fail(ctx, "unregister "+key.String(), err)
	}
	r.succeeded()
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
		return nil, r.fail(ctx, "lookup "+key.String(), err)
	}
	if len(reply) == 0 {
		return nil, r.fail(ctx, "lookup "+key.String(), errors.New("empty reply from lookup script"))
	}
	if r.reconnected() {
		// Redis answers again: before trusting what it says, learn whether
		// it lost its registrations (an empty restart), so that Lost is
		// closed when a caller compares this answer with what it knew.
		r.awaitCheck(ctx, lossCheckWait)
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
// been missed), when Redis lost its data, and at Close.
func (r *Redis) Changed() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changed
}

// Lost implements Matchmaker. The channel closes when a check finds that
// Redis no longer holds the data this client saw: the marker key relay
// keeps in Redis (one per slot range in a cluster) is gone or different
// (Redis restarted empty, was flushed or evicted it), or in a cluster
// another node now serves a slot range (a failover, which may lose the
// last writes). Checks run at start, after every reconnect (a failed
// command followed by a successful one, or the change subscription
// restored) and every RedisOptions.CheckInterval. A Sentinel failover is
// not reported (the replica had the marker); writes it lost in the
// replication lag come back at their next renewal. It does not close at
// Close.
func (r *Redis) Lost() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lost
}

// Close implements Matchmaker: it closes the client, stops the subscription
// and loss-check goroutines and waits for them. It is idempotent.
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
	// Closing the client closes its connections, in use or not, so that a
	// loss check waiting on a Redis that does not answer returns now (its
	// context's cancellation does not interrupt a read).
	err := r.client.Close()
	r.group.Close()
	r.group.Wait()
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

// succeeded records a command that worked: after failures, Redis may have
// restarted meanwhile, so the loss check runs now.
func (r *Redis) succeeded() { r.reconnected() }

// reconnected is succeeded, reporting whether this success followed a
// failure (it then kicked a loss check).
func (r *Redis) reconnected() bool {
	if r.failing.Load() && r.failing.CompareAndSwap(true, false) {
		r.kickCheck()
		return true
	}
	return false
}

// lossCheckWait bounds how long a lookup after a reconnect waits for the
// loss check it kicked.
const lossCheckWait = 500 * time.Millisecond

// awaitCheck waits, up to wait or ctx, until a loss check that started
// after this call has finished.
func (r *Redis) awaitCheck(ctx context.Context, wait time.Duration) {
	r.mu.Lock()
	after := r.checks
	r.mu.Unlock()
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		r.mu.Lock()
		done, ch := r.checked > after, r.checkDone
		r.mu.Unlock()
		if done {
			return
		}
		select {
		case <-ch:
		case <-t.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// failed records a command that failed: the next success kicks a loss
// check, and a cluster client reloads its map of slots to nodes (go-redis
// reloads it by itself only on MOVED replies, which a dead primary never
// sends, or every minute).
func (r *Redis) failed() {
	r.failing.Store(true)
	if r.cluster != nil {
		r.cluster.ReloadState(context.Background()) // asynchronous, coalesced
	}
}

// kickCheck asks watchLoss to check now.
func (r *Redis) kickCheck() {
	select {
	case r.kick <- struct{}{}:
	default: // a check is already due
	}
}

// fail wraps err from op with ErrMatchmaker, where it happened and a hint
// for its usual cause. If ctx is done and err does not already say so,
// ctx's error is wrapped too.
func (r *Redis) fail(ctx context.Context, op string, err error) error {
	if errors.Is(err, redis.ErrClosed) && r.check() != nil {
		return ErrClosed
	}
	r.failed()
	h := hint(err)
	if h == "" && r.noCert && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) {
		// With TLS 1.3 a server that wants a client certificate may only
		// hang up after the handshake.
		h = "the server hung up: if it requires client certificates (tls-auth-clients yes), add ?tls_cert=/path/cert.pem&tls_key=/path/key.pem"
	}
	if h != "" {
		err = fmt.Errorf("%w (%s)", err, h)
	}
	cerr := ctx.Err()
	if dl, ok := ctx.Deadline(); ok && cerr == nil && !time.Now().Before(dl) {
		cerr = context.DeadlineExceeded // the read deadline fired just before ctx's timer
	}
	if cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w: %s: %s: %w (%w)", ErrMatchmaker, r.where, op, err, cerr)
	}
	return fmt.Errorf("%w: %s: %s: %w", ErrMatchmaker, r.where, op, err)
}

// subscription receives change notices until ctx is cancelled, closing
// Changed at each. After any failure it closes Changed (notices may have
// been lost) and tries again; go-redis reconnects and resubscribes. A
// restored subscription also asks for a loss check: Redis may have
// restarted.
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
				// Resubscribed after a reconnect: notices may have been
				// missed, and Redis may have restarted.
				r.log.Info("change subscription restored")
				r.notify()
				r.kickCheck()
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
		return nil, r.fail(ctx, "list", err)
	}
	names, err := r.scanKeys(ctx)
	if err != nil {
		return nil, r.fail(ctx, "list", err)
	}
	var regs []Registration
	for _, name := range names {
		key, err := ParseKey(strings.TrimPrefix(name, redisKeyPrefix))
		if err != nil {
			continue // not one of ours (a marker)
		}
		members, err := r.client.ZRangeWithScores(ctx, name, 0, -1).Result()
		if err != nil {
			return nil, r.fail(ctx, "list "+key.String(), err)
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
	r.succeeded()
	sortRegistrations(regs)
	return regs, nil
}

// scanKeys returns the names of every relay key: SCAN on the server, or on
// every primary of a cluster.
func (r *Redis) scanKeys(ctx context.Context) ([]string, error) {
	scan := func(ctx context.Context, c redis.Cmdable) ([]string, error) {
		var names []string
		iter := c.Scan(ctx, 0, redisKeyPrefix+"*", 256).Iterator()
		for iter.Next(ctx) {
			names = append(names, iter.Val())
		}
		return names, iter.Err()
	}
	if r.cluster == nil {
		return scan(ctx, r.client)
	}
	var mu sync.Mutex
	var names []string
	err := r.cluster.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
		found, err := scan(ctx, c)
		mu.Lock()
		names = append(names, found...)
		mu.Unlock()
		return err
	})
	return names, err
}
