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

// lostConfirm is how long a server's connection stays lost (and cannot be
// made again) before the calls running there fail over: a server whose
// socket restarted takes the reconnect within libzmq's reconnect interval
// (50 ms at first), and the calls its handlers run must not run again on
// another server meanwhile. New calls avoid it at once.
const lostConfirm = 300 * time.Millisecond

// suspects are the peers (endpoints: servers, proxy fronts) that failed
// lately, each until a time: a bare target's calls and casts go to the
// other servers of its topic meanwhile, a publish to the other proxies,
// and a call resent with acks moves off a suspect server (actors.Resend).
// A peer whose connection comes up again is cleared at once. Safe for
// concurrent use; costs one atomic load per lookup while none is suspect.
type suspects struct {
	n atomic.Int64 // entries in m
	m sync.Map     // addr -> suspicion
}

// suspicion is why and until when a peer is suspect.
type suspicion struct {
	until time.Time // suspect until then
	lost  time.Time // its connection was lost then (zero: it failed otherwise)
}

// add makes addr suspect until the given time.
func (s *suspects) add(addr string, until time.Time) {
	s.store(addr, suspicion{until: until})
}

// store records v for addr.
func (s *suspects) store(addr string, v suspicion) {
	if _, loaded := s.m.Swap(addr, v); !loaded {
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

// get returns why addr is suspect at now, and whether it is; an entry past
// its time is removed.
func (s *suspects) get(addr string, now time.Time) (suspicion, bool) {
	if s.n.Load() == 0 {
		return suspicion{}, false
	}
	v, ok := s.m.Load(addr)
	if !ok {
		return suspicion{}, false
	}
	if sp := v.(suspicion); now.Before(sp.until) {
		return sp, true
	}
	if s.m.CompareAndDelete(addr, v) {
		s.n.Add(-1)
	}
	return suspicion{}, false
}

// has reports whether addr is suspect at now.
func (s *suspects) has(addr string, now time.Time) bool {
	_, ok := s.get(addr, now)
	return ok
}

// away reports whether addr is suspect now (actors.Resender's Away): a
// resend to it waits, as it would only be held while its connection is
// lost, and sent later to a server that may have restarted without the
// call meanwhile.
func (s *suspects) away(addr string) bool { return s.has(addr, time.Now()) }

// down reports whether addr failed for good (actors.Resender's Down): it
// refused this node, or its connection has been lost for lostConfirm.
func (s *suspects) down(addr string) bool {
	now := time.Now()
	sp, ok := s.get(addr, now)
	return ok && (sp.lost.IsZero() || now.Sub(sp.lost) >= lostConfirm)
}

// lose makes addr suspect because its connection was lost at now, keeping
// the time of an earlier loss that lasts.
func (s *suspects) lose(addr string, now time.Time) {
	lost := now
	if sp, ok := s.get(addr, now); ok && !sp.lost.IsZero() {
		lost = sp.lost
	}
	s.store(addr, suspicion{until: now.Add(suspectFor), lost: lost})
}

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
// could not be made, so it is suspect (until its connection comes up): new
// calls avoid it at once, and the calls running there fail over once it
// stays unreachable for lostConfirm.
func (n *Node) peerLost(addr string) { n.suspects.lose(addr, time.Now()) }

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
