package matchmaker

import (
	"context"
	"sort"
	"sync"
	"time"
)

// registries holds the in-process registries by name.
var registries = struct {
	sync.Mutex
	byName map[string]*registry
}{byName: make(map[string]*registry)}

// registry is one named in-process registry, shared by every Memory
// opened with its name.
type registry struct {
	changes *changes

	// mu guards entries.
	mu      sync.Mutex
	entries map[Key]map[string]time.Time // key -> addr -> expiry
}

// Memory is a matchmaker inside one process: every Memory opened with the
// same name shares one registry.
type Memory struct {
	closing
	reg *registry
}

// NewMemory opens the in-process registry called name, creating it on first
// use.
func NewMemory(name string) *Memory {
	registries.Lock()
	defer registries.Unlock()
	r, ok := registries.byName[name]
	if !ok {
		r = &registry{entries: make(map[Key]map[string]time.Time), changes: newChanges()}
		registries.byName[name] = r
	}
	return &Memory{reg: r}
}

// Register implements Matchmaker.
func (m *Memory) Register(ctx context.Context, key Key, addr string, ttl time.Duration) error {
	return m.RegisterMany(ctx, []Entry{{Key: key, Addr: addr}}, ttl)
}

// RegisterMany implements Matchmaker: every entry under one lock, one
// change notice if any was new.
func (m *Memory) RegisterMany(_ context.Context, entries []Entry, ttl time.Duration) error {
	if err := m.check(); err != nil {
		return err
	}
	r := m.reg
	r.mu.Lock()
	defer r.mu.Unlock()
	exp := time.Now().Add(ttl)
	added := false
	for _, e := range entries {
		members, ok := r.entries[e.Key]
		if !ok {
			members = make(map[string]time.Time)
			r.entries[e.Key] = members
		}
		if _, existed := members[e.Addr]; !existed {
			added = true
		}
		members[e.Addr] = exp
	}
	if added {
		r.changes.notify()
	}
	return nil
}

// Unregister implements Matchmaker.
func (m *Memory) Unregister(_ context.Context, key Key, addr string) error {
	if err := m.check(); err != nil {
		return err
	}
	r := m.reg
	r.mu.Lock()
	defer r.mu.Unlock()
	if members, ok := r.entries[key]; ok {
		if _, ok := members[addr]; ok {
			delete(members, addr)
			if len(members) == 0 {
				delete(r.entries, key)
			}
			r.changes.notify()
		}
	}
	return nil
}

// Lookup implements Matchmaker. Expired members are removed as they are
// found.
func (m *Memory) Lookup(_ context.Context, key Key) ([]string, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	r := m.reg
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	members := r.entries[key]
	addrs := make([]string, 0, len(members))
	for addr, exp := range members {
		if now.After(exp) {
			delete(members, addr)
			continue
		}
		addrs = append(addrs, addr)
	}
	sort.Strings(addrs)
	return addrs, nil
}

// Changed implements Matchmaker.
func (m *Memory) Changed() <-chan struct{} { return m.reg.changes.wait() }

// Lost implements Matchmaker: an in-process registry loses nothing, so the
// channel never closes.
func (m *Memory) Lost() <-chan struct{} { return never }

// Close implements Matchmaker.
func (m *Memory) Close() error {
	m.markClosed()
	return nil
}
