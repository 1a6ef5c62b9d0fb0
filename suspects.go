package relay

import (
	"sync"
	"sync/atomic"
	"time"
)

// suspectFor is how long a peer that failed is tried last: a server that
// refused this node's connection (CURVE), whose connection was lost or
// could not be made, or a publisher proxy that missed an ACK.
const suspectFor = 10 * time.Second

// lostConfirm is how long a server whose connection was lost (and could
// not be made again) stays unreachable before it is suspect: a server
// whose socket restarted takes the reconnect within libzmq's reconnect
// interval, and its calls must not move to another server meanwhile.
const lostConfirm = 300 * time.Millisecond

// suspects are the peers (endpoints: servers, proxy fronts) that failed
// lately, each until a time: a bare target's calls and casts go to the
// other servers of its topic meanwhile, a publish to the other proxies,
// and a call resent with acks moves off a suspect server (actors.Resend).
// A peer whose connection comes up again is cleared at once. Safe for
// concurrent use; costs one atomic load per lookup while none is suspect.
type suspects struct {
	n atomic.Int64 // entries in m
	m sync.Map     // addr -> window: when it is suspect
}

// window is when a peer is suspect: from (zero: at once) until.
type window struct{ from, until time.Time }

// add makes addr suspect until the given time.
func (s *suspects) add(addr string, until time.Time) { s.addFrom(addr, time.Time{}, until) }

// addFrom makes addr suspect from one time until another, unless it is
// already suspect from earlier.
func (s *suspects) addFrom(addr string, from, until time.Time) {
	if v, ok := s.m.Load(addr); ok && v.(window).from.Before(from) {
		from = v.(window).from
	}
	if _, loaded := s.m.Swap(addr, window{from: from, until: until}); !loaded {
		s.n.Add(1)
	}
}

// clear makes addr trusted again.
func (s *suspects) clear(addr string) {
	if s.n.Load() == 0 {
		return
	}
	if _, loaded := s.m.LoadAndDelete(addr); loaded {
		s.n.Add(-1)
	}
}

// has reports whether addr is suspect at now; an entry past its time is
// removed.
func (s *suspects) has(addr string, now time.Time) bool {
	if s.n.Load() == 0 {
		return false
	}
	v, ok := s.m.Load(addr)
	if !ok {
		return false
	}
	w := v.(window)
	if now.Before(w.until) {
		return !now.Before(w.from)
	}
	if s.m.CompareAndDelete(addr, v) {
		s.n.Add(-1)
	}
	return false
}

// down reports whether addr is suspect now (actors.Resender's Down).
func (s *suspects) down(addr string) bool { return s.has(addr, time.Now()) }

// filter returns addrs without the suspect ones, unless all are suspect.
// It allocates only when some are.
func (s *suspects) filter(addrs []string) []string {
	if s.n.Load() == 0 {
		return addrs
	}
	now := time.Now()
	var out []string
	for i, a := range addrs {
		if s.has(a, now) {
			if out == nil {
				out = append(make([]string, 0, len(addrs)), addrs[:i]...)
			}
			continue
		}
		if out != nil {
			out = append(out, a)
		}
	}
	switch {
	case out == nil:
		return addrs // none suspect
	case len(out) == 0:
		return addrs // all suspect: try them anyway
	}
	return out
}

// peerLost is the dealers' OnLost: the connection to a server could not be
// made, so it is suspect once that lasts lostConfirm (until its connection
// comes up).
func (n *Node) peerLost(addr string) {
	now := time.Now()
	n.suspects.addFrom(addr, now.Add(lostConfirm), now.Add(suspectFor))
}

// failovers returns where a bare call with acks goes: first to send, then,
// should that server go down before any server acknowledged the call, to
// the other servers of addrs (its topic's, in turn; see
// actors.Resender.ResentFailover). nil when there is no other server.
func (n *Node) failovers(send string, addrs []string) []string {
	if len(addrs) < 2 {
		return nil
	}
	out := make([]string, 1, len(addrs))
	out[0] = send
	for _, a := range addrs {
		if via := n.viaInproc(a); via != send {
			out = append(out, via)
		}
	}
	return out
}
