package matchmaker

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

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
