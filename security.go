package relay

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/relay-dev/relay/actors"
	"github.com/relay-dev/relay/curve"
	"github.com/relay-dev/relay/internal/security"
)

// ErrUnauthorized: a peer was refused for want of the right CURVE key: a
// server refused this node's key (not on its allow-list), a server could
// not prove the key it registered, one side has CURVE and the other not,
// or every server registered for the target is untrusted. See
// docs/SECURITY.md.
var ErrUnauthorized = security.ErrUnauthorized

// CodeUnauthorized is the ERROR code of a call whose caller's CURVE key is
// not (or no longer) on the server's allow-list.
const CodeUnauthorized = actors.CodeUnauthorized

// AllowListPoll is how often a node or proxy reads its allow-list file
// (WithCurve, --curve-allow) again; a change is taken without a restart.
const AllowListPoll = security.AllowListPoll

// Peer is the authenticated identity of a request's sender (CURVE): its
// public key, and its name on the receiving node's allow-list. Both are
// zero without CURVE.
type Peer struct {
	Key  curve.Key
	Name string
}

// Authenticated reports whether CURVE authenticated the peer.
func (p Peer) Authenticated() bool { return !p.Key.IsZero() }

// String returns the peer's name, or its key when it has none, or
// "anonymous" without CURVE.
func (p Peer) String() string {
	switch {
	case p.Name != "":
		return p.Name
	case p.Authenticated():
		return p.Key.String()
	}
	return "anonymous"
}

// refusedFor is how long a peer that refused a connection is tried last.
const refusedFor = 10 * time.Second

// refusedPeers are the peers (endpoints) that refused a connection lately:
// a bare target's calls go to its other servers meanwhile. Safe for
// concurrent use; costs one atomic load per lookup while none is refused.
type refusedPeers struct {
	n atomic.Int64 // entries in m
	m sync.Map     // addr -> time.Time, until when it is tried last
}

// add marks addr refused until the given time.
func (r *refusedPeers) add(addr string, until time.Time) {
	if _, loaded := r.m.Swap(addr, until); !loaded {
		r.n.Add(1)
	}
}

// filter returns addrs without the refused ones, unless all are refused.
func (r *refusedPeers) filter(addrs []string) []string {
	if r.n.Load() == 0 {
		return addrs
	}
	now := time.Now()
	var out []string
	for _, a := range addrs {
		if v, ok := r.m.Load(a); ok {
			if now.Before(v.(time.Time)) {
				continue
			}
			if r.m.CompareAndDelete(a, v) {
				r.n.Add(-1)
			}
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		return addrs
	}
	return out
}
