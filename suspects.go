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

// suspects are the peers (endpoints: servers, proxy fronts) that failed
// lately, each until a time: a bare target's calls and casts go to the
// other servers of its topic meanwhile, a publish to the other proxies,
// and a call resent with acks moves off a suspect server (actors.Resend).
// A peer whose connection comes up again is cleared at once. Safe for
// concurrent use; costs one atomic load per lookup while none is suspect.
type suspects struct {
	n atomic.Int64 // entries in m
	m sync.Map     // addr -> time.Time, until when it is suspect
}

// add makes addr suspect until the given time.
func (s *suspects) add(addr string, until time.Time) {
	if _, loaded := s.m.Swap(addr, until); !loaded {
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
	if now.Before(v.(time.Time)) {
		return true
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

// peerLost is the dealers' OnLost: the connection to a server was lost or
// could not be made, so it is suspect (until its connection comes up).
func (n *Node) peerLost(addr string) {
	n.suspects.add(addr, time.Now().Add(suspectFor))
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
