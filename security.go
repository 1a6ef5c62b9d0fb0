package relay

import (
	"github.com/relay-dev/relay/curve"
	"github.com/relay-dev/relay/internal/security"
)

// ErrUnauthorized: a peer was refused for want of the right CURVE key: a
// server refused this node's key (not on its allow-list), a server could
// not prove the key it registered, one side has CURVE and the other not,
// or every server registered for the target is untrusted. See
// docs/SECURITY.md.
var ErrUnauthorized = security.ErrUnauthorized

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
