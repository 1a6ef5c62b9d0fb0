package sockets

import "encoding/binary"

// maxBatch bounds the bytes of records a loop packs into one ZeroMQ
// message (less when the peers' MaxMsgSize is smaller: batchLimit); a
// single record larger than it travels alone. With the
// high-water mark (in messages) it bounds what a pipe holds.
const maxBatch = 64 << 10

// recvBufSize is the size of a loop's receive buffer; it grows for a
// message that does not fit, up to the largest message accepted.
const recvBufSize = maxBatch

// recvMax bounds how many ZeroMQ messages one receive call takes, so that
// one busy socket cannot starve the rest of the loop.
const recvMax = 1024

// packer builds ZeroMQ messages in packed form (see zmqio.go): each one a
// payload frame of records, behind a routing-id frame on a ROUTER. It
// remembers which queued messages each ZeroMQ message carries, so that a
// send that stops part way says which were sent.
type packer struct {
	limit int // bytes of records per ZeroMQ message; 0: maxBatch
	buf   []byte
	ends  []int // end offset in buf of each ZeroMQ message
	upto  []int // number of queued messages carried up to and including it
	mark  int   // offset of the open payload frame's length
	n     int   // queued messages added so far
	open  bool
	size  int    // bytes of the open payload
	route []byte // routing id of the open message (Router)
}

func (p *packer) reset() {
	p.buf, p.ends, p.upto = p.buf[:0], p.ends[:0], p.upto[:0]
	p.n, p.open, p.route = 0, false, nil
}

// add appends the records of one queued message, to the peer with routing
// id to (nil on a DEALER), starting a new ZeroMQ message when the peer
// changes or the open one is full.
func (p *packer) add(to, rec []byte) {
	if p.open && (p.size+len(rec) > p.max() || string(to) != string(p.route)) {
		p.close()
	}
	if !p.open {
		if to != nil {
			p.buf = append(p.buf, 2)
			p.buf = binary.NativeEndian.AppendUint32(p.buf, uint32(len(to)))
			p.buf = append(p.buf, to...)
		} else {
			p.buf = append(p.buf, 1)
		}
		p.mark = len(p.buf)
		p.buf = append(p.buf, 0, 0, 0, 0)
		p.open, p.size, p.route = true, 0, to
	}
	p.buf = append(p.buf, rec...)
	p.size += len(rec)
	p.n++
}

// max returns the bytes of records a ZeroMQ message may carry.
func (p *packer) max() int {
	if p.limit > 0 {
		return p.limit
	}
	return maxBatch
}

// routingRoom is what a receiving ROUTER adds to a message's size (the
// routing-id frame) before it checks the message against its limit.
const routingRoom = 64

// batchLimit is the bytes of records a loop packs into one ZeroMQ message
// towards peers that drop messages larger than maxMsgSize (all frames
// together; 0: no limit): a batch must not be dropped where each of its
// records alone would be taken.
func batchLimit(maxMsgSize int64) int {
	if maxMsgSize <= 0 || maxMsgSize-routingRoom >= maxBatch {
		return maxBatch
	}
	return int(max(maxMsgSize-routingRoom, 1))
}

// close ends the open ZeroMQ message.
func (p *packer) close() {
	if !p.open {
		return
	}
	binary.NativeEndian.PutUint32(p.buf[p.mark:], uint32(p.size))
	p.ends = append(p.ends, len(p.buf))
	p.upto = append(p.upto, p.n)
	p.open = false
}

// bytes closes the open message and returns the packed form.
func (p *packer) bytes() []byte {
	p.close()
	return p.buf
}

// sent returns how many queued messages the first done bytes carried.
func (p *packer) sent(done int) int {
	n := 0
	for i, end := range p.ends {
		if end > done {
			break
		}
		n = p.upto[i]
	}
	return n
}

// messagesOf returns the range of queued messages carried by ZeroMQ
// message i.
func (p *packer) messagesOf(i int) (from, to int) {
	if i > 0 {
		from = p.upto[i-1]
	}
	return from, p.upto[i]
}

// indexAt returns the ZeroMQ message that starts at byte offset off.
func (p *packer) indexAt(off int) int {
	for i, end := range p.ends {
		if end > off {
			return i
		}
	}
	return len(p.ends)
}

// receiver receives batches from one socket into a reusable buffer and
// hands each batch out in memory of its own: carved from a slab, so that
// small batches cost one allocation per slab rather than one each. A slab
// lives as long as any batch carved from it is referenced.
type receiver struct {
	buf  []byte
	slab []byte // what is left of the current slab
}

// slabSize is the size of the slabs batches are carved from; a batch
// larger than a quarter of it gets memory of its own.
const slabSize = 16 << 10

// keep copies b into memory the caller may keep.
func (rc *receiver) keep(b []byte) []byte {
	if len(b) > slabSize/4 {
		return append([]byte(nil), b...)
	}
	if len(rc.slab) < len(b) {
		rc.slab = make([]byte, slabSize)
	}
	out := rc.slab[:len(b):len(b)]
	copy(out, b)
	rc.slab = rc.slab[len(b):]
	return out
}

// recv reads what the socket holds (up to recvMax messages) and returns it
// in packed form, in a new slice the caller owns, or nil when there was
// nothing. more says whether the socket may hold more.
func (rc *receiver) recv(s *batchSocket) (batch []byte, res recvResult) {
	if rc.buf == nil {
		rc.buf = make([]byte, recvBufSize)
	}
	res = s.recv(rc.buf, recvMax)
	if res.n == 0 && res.need > 0 {
		// One message larger than the buffer: grow for it (libzmq has
		// checked it against the socket's MAXMSGSIZE per frame).
		rc.buf = make([]byte, res.need)
		res = s.recv(rc.buf, recvMax)
	}
	if res.used > 0 {
		batch = rc.keep(rc.buf[:res.used])
	}
	if len(rc.buf) > recvBufSize {
		rc.buf = nil // do not keep a buffer one large message grew
	}
	return batch, res
}

// Batch is what a loop received from one socket in one turn: whole ZeroMQ
// messages in packed form, in a buffer of the batch's own that its
// receiver keeps (the frames Next returns alias it).
type Batch struct {
	buf []byte
	n   int
	off int
}

// Len returns the number of ZeroMQ messages in the batch.
func (b *Batch) Len() int { return b.n }

// Size returns the batch's bytes.
func (b *Batch) Size() int { return len(b.buf) }

// Next returns the frames of the next message in frames[:0], or false at
// the end.
func (b *Batch) Next(frames [][]byte) ([][]byte, bool) {
	p := packed{buf: b.buf, off: b.off}
	frames, ok := p.next(frames)
	b.off = p.off
	return frames, ok
}

// countPacked returns the number of whole messages in buf (packed form).
func countPacked(buf []byte) int {
	p := packed{buf: buf}
	n := 0
	var frames [][]byte
	for {
		var ok bool
		if frames, ok = p.next(frames); !ok {
			return n
		}
		n++
	}
}
