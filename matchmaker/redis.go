package matchmaker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
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

	closing
	changes *changes

	// mu guards the fields below.
	mu   sync.Mutex
	lost chan struct{}
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
		changes:    newChanges(),
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

// Changed implements Matchmaker. The channel also closes when the
// subscription to change notices was lost or restored (notices may have
// been missed), when Redis lost its data, and at Close.
func (r *Redis) Changed() <-chan struct{} { return r.changes.wait() }

// Close implements Matchmaker: it closes the client, stops the subscription
// and loss-check goroutines and waits for them. It is idempotent.
func (r *Redis) Close() error {
	if !r.markClosed() {
		return nil
	}
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

// notify closes the current Changed channel and starts a new one.
func (r *Redis) notify() { r.changes.notify() }

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
