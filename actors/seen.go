package actors

import (
	"sync"
	"time"

	"github.com/relay-dev/relay/envelope"
)

// Seen is a server's memory of the msg_ids it received with AckWanted, for
// a TTL and at most seenMax of them (the oldest go first): a resent cast is not applied twice, and a resent call whose reply
// was lost gets the remembered reply while its handler runs only once.
// Safe for concurrent use.
type Seen struct {
	ttl time.Duration

	// mu guards the fields below.
	mu    sync.Mutex
	byID  map[envelope.MsgID]*seenEntry
	order []seenOrder // by arrival, for expiry; order[head:] are live
	head  int
}

// seenMax bounds a Seen: at 100k acknowledged messages a second that is
// the last 10 s, whatever the TTL.
const seenMax = 1 << 20

type seenEntry struct {
	done  bool
	reply []byte // a call's answer record, once done
}

type seenOrder struct {
	id envelope.MsgID
	at time.Time
}

// NewSeen remembers msg_ids for ttl.
func NewSeen(ttl time.Duration) *Seen {
	return &Seen{ttl: ttl, byID: make(map[envelope.MsgID]*seenEntry)}
}

// Begin reports whether id is new (the handler should run). When it is not,
// reply is the remembered answer of a finished call (nil while it runs, or
// for a cast).
func (s *Seen) Begin(id envelope.MsgID) (first bool, reply []byte) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.head < len(s.order) && (now.Sub(s.order[s.head].at) > s.ttl || len(s.order)-s.head >= seenMax) {
		delete(s.byID, s.order[s.head].id)
		s.head++
	}
	if s.head > len(s.order)/2 { // compact now and then, not per message
		s.order = append(s.order[:0], s.order[s.head:]...)
		s.head = 0
	}
	if e, ok := s.byID[id]; ok {
		if e.done {
			return false, e.reply
		}
		return false, nil
	}
	s.byID[id] = &seenEntry{}
	s.order = append(s.order, seenOrder{id: id, at: now})
	return true, nil
}

// Done records that id's handler finished, with its answer record (nil for
// a cast).
func (s *Seen) Done(id envelope.MsgID, reply []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.byID[id]; ok {
		e.done, e.reply = true, reply
	}
}
