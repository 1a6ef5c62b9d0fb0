package matchmaker

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

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
