package matchmaker

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisHealthCheck is how long the subscription waits for a message before
// it pings Redis to find out whether the connection is still alive.
const redisHealthCheck = 3 * time.Second

// redisRetryBackoff is how long the subscription waits before it tries
// again after an error.
const redisRetryBackoff = 200 * time.Millisecond

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
