package sockets

import (
	"errors"
	"time"
)

// ErrConnectionLost is what a Dealers loop hands OnDrop for a message that
// nothing confirms (DealersConfig.Unconfirmed) when the connection it was
// sent on dropped while it may still have been unread: in the sender's
// buffers, the kernel's, or the server's. It may also have arrived.
var ErrConnectionLost = errors.New("sockets: connection lost with the message possibly unread")

// unreadAge is how long after it was sent an unconfirmed message is taken
// as read by the server even when little was sent after it, provided the
// DEALER never found its pipe full since: a server that keeps up reads in
// milliseconds; one that does not fills the buffers, and the DEALER's
// sends then block.
const unreadAge = time.Second

// assumedKernelBuffer is a TCP socket buffer's size when Options leaves it
// to the system (Linux grows it up to 4 MiB).
const assumedKernelBuffer = 4 << 20

// Tracking is how a Dealers loop follows a record it sent (see
// DealersConfig.Track).
type Tracking uint8

const (
	// Untracked records need nothing of the loop.
	Untracked Tracking = iota
	// Unconfirmed records (one-way messages without acks) are kept while
	// they may be unread, and reported lost if the connection drops.
	Unconfirmed
	// Answered records (calls, messages with acks) get an answer from the
	// server, which proves that it read everything sent before them.
	Answered
)

// unconfirmed keeps copies of the messages a DEALER sent that nothing
// will confirm (one-way messages without acks) for as long as they may
// still be unread: until more bytes were sent after them than the buffers
// between the loop and the server's reader can hold (the DEALER's pipe, at
// its high-water mark of batches, both kernels' buffers, both engines), or
// unreadAge passed while the DEALER could send, or an answer came to a
// message sent after them. So it never holds more than those buffers do.
// When the connection drops, what it holds is what the drop may have lost.
// Loop only.
type unconfirmed struct {
	atRisk  int64 // bytes the buffers can hold, for the largest batch seen
	hwm     int64
	kernel  int64
	largest int64 // the largest batch this DEALER sent, at least maxBatch

	sent      int64  // bytes sent so far
	blockedAt int64  // Unix ns when a send last found the pipe full
	base      int64  // stream offset of buf[0]
	buf       []byte // the kept records, back to back
	ents      []unconfirmedEnt
	first     int // ents[first:] are live

	// marks are the Answered messages sent while some unconfirmed one was
	// kept: an answer to one confirms what was sent before it.
	marks     map[[16]byte]int64 // msg_id → its after
	markQ     []unconfirmedMark
	firstMark int
}

type unconfirmedMark struct {
	id    [16]byte
	after int64
	at    int64
}

type unconfirmedEnt struct {
	off, end int64 // the record's stream offsets in buf
	after    int64 // sent once it was: the bytes up to its end
	at       int64 // Unix ns when it was sent
}

func newUnconfirmed(o Options) *unconfirmed {
	hwm := int64(o.HWM)
	if hwm <= 0 {
		hwm = 1000 // libzmq's default
	}
	kernel := int64(o.KernelBuffer)
	if kernel <= 0 {
		kernel = assumedKernelBuffer
	}
	u := &unconfirmed{hwm: hwm, kernel: kernel}
	u.grow(maxBatch)
	return u
}

// grow recomputes atRisk for a batch of n bytes: the DEALER's pipe holds
// up to hwm batches, each engine about one, and the kernel doubles each
// socket buffer it is given, on both sides.
func (u *unconfirmed) grow(n int64) {
	if n > u.largest {
		u.largest = n
		u.atRisk = (u.hwm+2)*u.largest + 4*u.kernel
	}
}

// sentRec counts rec, just handed to the DEALER at now, and follows it as
// t says: an Unconfirmed one is copied, an Answered one (msg_id id)
// marked while unconfirmed ones are kept.
func (u *unconfirmed) sentRec(rec []byte, t Tracking, id [16]byte, now int64) {
	u.grow(int64(len(rec)))
	u.sent += int64(len(rec))
	switch {
	case t == Unconfirmed:
		u.keep(rec, now)
	case t == Answered && u.first < len(u.ents):
		if u.marks == nil {
			u.marks = make(map[[16]byte]int64)
		}
		u.marks[id] = u.sent
		u.markQ = append(u.markQ, unconfirmedMark{id: id, after: u.sent, at: now})
	}
}

func (u *unconfirmed) keep(rec []byte, now int64) {
	u.evict(now)
	if len(u.ents) == u.first {
		u.buf, u.base, u.ents, u.first = u.buf[:0], 0, u.ents[:0], 0
	} else if head := u.ents[u.first].off - u.base; head > int64(len(u.buf)/2) && head >= maxBatch {
		// Compact: drop the evicted bytes and entries from the front.
		u.buf = u.buf[:copy(u.buf, u.buf[head:])]
		u.base += head
		u.ents = u.ents[:copy(u.ents, u.ents[u.first:])]
		u.first = 0
	}
	off := u.base + int64(len(u.buf))
	u.buf = append(u.buf, rec...)
	u.ents = append(u.ents, unconfirmedEnt{off: off, end: off + int64(len(rec)), after: u.sent, at: now})
}

// tracking reports whether answers can confirm anything: some message is
// kept and some answered one marked.
func (u *unconfirmed) tracking() bool { return u.firstMark < len(u.markQ) }

// answered confirms what was sent before the message id, which the server
// answered: it read it, and everything before it on this connection.
func (u *unconfirmed) answered(id [16]byte) {
	after, ok := u.marks[id]
	if !ok {
		return
	}
	for u.first < len(u.ents) && u.ents[u.first].after < after {
		u.first++
	}
	u.dropMarks(func(m unconfirmedMark) bool { return m.after <= after })
}

// dropMarks forgets the marks at the front of the queue while old says so.
func (u *unconfirmed) dropMarks(old func(unconfirmedMark) bool) {
	for u.firstMark < len(u.markQ) && old(u.markQ[u.firstMark]) {
		delete(u.marks, u.markQ[u.firstMark].id)
		u.firstMark++
	}
	if u.firstMark == len(u.markQ) {
		u.markQ, u.firstMark = u.markQ[:0], 0
	} else if u.firstMark > len(u.markQ)/2 && u.firstMark >= 1024 {
		u.markQ = u.markQ[:copy(u.markQ, u.markQ[u.firstMark:])]
		u.firstMark = 0
	}
}

// blocked notes that a send found the DEALER's pipe full at now: what was
// sent before may sit in the buffers for as long as the server reads
// nothing, so its age counts from now.
func (u *unconfirmed) blocked(now int64) { u.blockedAt = now }

// evict forgets the messages the server has certainly read by now.
func (u *unconfirmed) evict(now int64) {
	for u.first < len(u.ents) {
		e := u.ents[u.first]
		if u.sent-e.after <= u.atRisk && now-max(e.at, u.blockedAt) <= int64(unreadAge) {
			return
		}
		u.first++
	}
	if u.first == len(u.ents) {
		u.dropMarks(func(unconfirmedMark) bool { return true }) // nothing left to confirm
	} else {
		oldest := u.ents[u.first].after
		u.dropMarks(func(m unconfirmedMark) bool { return m.after < oldest })
	}
}

// lost hands f, in the order sent, each message the drop of the connection
// may have lost, and forgets them all. The record is f's only during the
// call.
func (u *unconfirmed) lost(now int64, f func(rec []byte)) {
	u.evict(now)
	for _, e := range u.ents[u.first:] {
		f(u.buf[e.off-u.base : e.end-u.base])
	}
	u.reset()
}

// reset forgets every message kept, keeping the memory while it is small.
func (u *unconfirmed) reset() {
	if cap(u.buf) > 4*maxBatch {
		u.buf, u.ents = nil, nil
	}
	u.buf, u.base, u.ents, u.first = u.buf[:0], 0, u.ents[:0], 0
	u.dropMarks(func(unconfirmedMark) bool { return true })
}
