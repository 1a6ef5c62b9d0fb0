package matchmaker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisMarkerKey is the marker that tells whether a Redis still holds the
// data a client saw; in a cluster, redisMarkerKey + ":{TAG}" with one TAG per
// slot range, chosen so that the key lands in that range.
const redisMarkerKey = redisKeyPrefix + "marker"

// markerScript returns the marker KEYS[1], setting it to ARGV[1] first if
// it is missing. The marker never expires: only an empty restart, a flush
// or an eviction removes it.
var markerScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v then
	return v
end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
`)

// watchLoss checks the markers at start, when kicked (after a reconnect),
// and every checkEvery, closing Lost when one changed. A failed check is
// retried at the next tick, or at once when a command works again.
//
// Runs in its own goroutine.
func (r *Redis) watchLoss(ctx context.Context) {
	seen := map[string]marker{} // marker key -> what it was at the last check
	tags := map[int]string{}    // slot -> hash tag, memoised
	t := time.NewTicker(r.checkEvery)
	defer t.Stop()
	for {
		r.mu.Lock()
		r.checks++
		n := r.checks
		r.mu.Unlock()
		cctx, cancel := context.WithTimeout(ctx, r.checkEvery)
		reason, err := r.checkMarkers(cctx, seen, tags)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			r.failed()
		case reason != "":
			r.log.Warn("redis lost registrations; re-register", "reason", reason)
			r.mu.Lock()
			close(r.lost)
			r.lost = make(chan struct{})
			r.mu.Unlock()
			r.notify()
		}
		r.mu.Lock()
		r.checked = n
		close(r.checkDone)
		r.checkDone = make(chan struct{})
		r.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.kick:
		}
	}
}

// marker is what a check found for one marker key.
type marker struct {
	value string
	owner string // the cluster node serving its slot; "" outside a cluster
}

// checkMarkers reads (or creates) every marker and compares it with seen,
// which it then updates. It returns why data was lost ("" when it was not).
func (r *Redis) checkMarkers(ctx context.Context, seen map[string]marker, tags map[int]string) (string, error) {
	keys, owners, err := r.markerKeys(ctx, tags)
	if err != nil {
		return "", err
	}
	token := make([]byte, 16)
	_, _ = rand.Read(token)
	calls := make([]scriptCall, len(keys))
	for i, k := range keys {
		calls[i] = scriptCall{key: k, args: []any{hex.EncodeToString(token)}}
	}
	cmds := r.runScripts(ctx, markerScript, calls)
	reason := ""
	now := make(map[string]marker, len(keys))
	for i, cmd := range cmds {
		v, err := cmd.Text()
		if err != nil {
			return "", err
		}
		m := marker{value: v, owner: owners[i]}
		now[keys[i]] = m
		old, ok := seen[keys[i]]
		switch {
		case !ok || old == m || reason != "":
		case old.value != m.value:
			reason = "marker " + keys[i] + " changed (Redis restarted empty, or was flushed)"
		default:
			reason = "slots of " + keys[i] + " moved from " + old.owner + " to " + m.owner + " (a failover may lose the last writes)"
		}
	}
	clear(seen)
	for k, v := range now {
		seen[k] = v
	}
	return reason, nil
}

// markerKeys returns the marker keys to check, and the node that owns each
// ("" outside a cluster): one per slot range of a cluster, so that every
// primary holds one.
func (r *Redis) markerKeys(ctx context.Context, tags map[int]string) ([]string, []string, error) {
	if r.cluster == nil {
		return []string{redisMarkerKey}, []string{""}, nil
	}
	ranges, err := r.cluster.ClusterSlots(ctx).Result()
	if err != nil {
		return nil, nil, err
	}
	if len(ranges) == 0 {
		return nil, nil, errors.New("the cluster serves no slots")
	}
	keys := make([]string, 0, len(ranges))
	owners := make([]string, 0, len(ranges))
	for _, rg := range ranges {
		tag, ok := tags[rg.Start]
		if !ok {
			tag = slotTag(rg.Start)
			tags[rg.Start] = tag
		}
		owner := ""
		if len(rg.Nodes) > 0 {
			owner = rg.Nodes[0].Addr
		}
		keys = append(keys, redisMarkerKey+":{"+tag+"}")
		owners = append(owners, owner)
	}
	return keys, owners, nil
}

// slotTag returns a short string that Redis Cluster hashes to slot.
func slotTag(slot int) string {
	for i := 0; ; i++ {
		s := strconv.Itoa(i)
		if int(crc16([]byte(s))%16384) == slot {
			return s
		}
	}
}

// crc16 is CRC-16/XMODEM, the hash of Redis Cluster key slots.
func crc16(b []byte) uint16 {
	var crc uint16
	for _, c := range b {
		crc ^= uint16(c) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
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
