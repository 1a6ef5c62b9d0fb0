package matchmaker

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Registration is one address filed under a key.
type Registration struct {
	Key     Key
	Addr    string
	Expires time.Time // zero: never (a static file)
}

// Lister is implemented by matchmakers that can list every registration
// (all of relay's: Memory, File, Redis). `node status` uses it.
type Lister interface {
	List(ctx context.Context) ([]Registration, error)
}

// ParseKey parses Key.String()'s form: "exchange/topic" or
// "exchange/topic/server" (the exchange may be empty: "/topic").
func ParseKey(s string) (Key, error) {
	parts := strings.Split(s, "/")
	switch {
	case len(parts) == 2 && parts[1] != "":
		return Key{Exchange: parts[0], Topic: parts[1]}, nil
	case len(parts) == 3 && parts[1] != "" && parts[2] != "":
		return Key{Exchange: parts[0], Topic: parts[1], Server: parts[2]}, nil
	}
	return Key{}, fmt.Errorf("matchmaker: key %q: want exchange/topic or exchange/topic/server", s)
}

// sortRegistrations orders by key, then address.
func sortRegistrations(regs []Registration) {
	sort.Slice(regs, func(i, j int) bool {
		a, b := regs[i].Key.String(), regs[j].Key.String()
		if a != b {
			return a < b
		}
		return regs[i].Addr < regs[j].Addr
	})
}

// List implements Lister: the live registrations of the registry.
func (m *Memory) List(context.Context) ([]Registration, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	now := time.Now()
	r := m.reg
	r.mu.Lock()
	var regs []Registration
	for k, members := range r.entries {
		for addr, exp := range members {
			if exp.After(now) {
				regs = append(regs, Registration{Key: k, Addr: addr, Expires: exp})
			}
		}
	}
	r.mu.Unlock()
	sortRegistrations(regs)
	return regs, nil
}

// List implements Lister: every entry of the file, as bare-topic keys that
// never expire.
func (f *File) List(context.Context) ([]Registration, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	var regs []Registration
	for name, entries := range f.hosts {
		k := Key{Topic: name}
		if ex, topic, ok := strings.Cut(name, "/"); ok {
			k = Key{Exchange: ex, Topic: topic}
		}
		for _, e := range entries {
			regs = append(regs, Registration{Key: k, Addr: "tcp://" + e})
		}
	}
	sortRegistrations(regs)
	return regs, nil
}
