package relay

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/relay-dev/relay/matchmaker"
)

// The matchmaker operations a node counts (Stats.MatchmakerOps).
const (
	opRegister = iota
	opRegisterMany
	opUnregister
	opLookup
	numOps
)

var opNames = [numOps]string{"register", "register_many", "unregister", "lookup"}

// countedMatchmaker counts a matchmaker's operations and their errors.
type countedMatchmaker struct {
	matchmaker.Matchmaker
	ops, errs [numOps]atomic.Uint64
}

func (c *countedMatchmaker) count(op int, err error) error {
	c.ops[op].Add(1)
	if err != nil {
		c.errs[op].Add(1)
	}
	return err
}

func (c *countedMatchmaker) Register(ctx context.Context, key matchmaker.Key, addr string, ttl time.Duration) error {
	return c.count(opRegister, c.Matchmaker.Register(ctx, key, addr, ttl))
}

func (c *countedMatchmaker) RegisterMany(ctx context.Context, entries []matchmaker.Entry, ttl time.Duration) error {
	return c.count(opRegisterMany, c.Matchmaker.RegisterMany(ctx, entries, ttl))
}

func (c *countedMatchmaker) Unregister(ctx context.Context, key matchmaker.Key, addr string) error {
	return c.count(opUnregister, c.Matchmaker.Unregister(ctx, key, addr))
}

func (c *countedMatchmaker) Lookup(ctx context.Context, key matchmaker.Key) ([]string, error) {
	addrs, err := c.Matchmaker.Lookup(ctx, key)
	return addrs, c.count(opLookup, err)
}

// snapshot returns the operations and errors by name.
func (c *countedMatchmaker) snapshot() (ops, errs map[string]uint64) {
	ops, errs = map[string]uint64{}, map[string]uint64{}
	for i, name := range opNames {
		ops[name], errs[name] = c.ops[i].Load(), c.errs[i].Load()
	}
	return ops, errs
}
