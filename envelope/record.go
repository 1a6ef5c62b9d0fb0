package envelope

import (
	"encoding/binary"
	"fmt"
)

// A record is one message on the wire: its header, then the body's length
// as a big-endian u32, then the body. A ZeroMQ payload frame holds one or
// more records back to back (a batch); see docs/PROTOCOL.md.

// bodyLenSize is the size of the body length between header and body.
const bodyLenSize = 4

// MaxBodyLen is the largest body a record can carry.
const MaxBodyLen = 1<<32 - 1

// AppendRecord appends the record of h and body to b. Like Append it
// assumes h is valid.
func (h *Header) AppendRecord(b []byte, body []byte) []byte {
	b, mark := h.BeginRecord(b)
	b = append(b, body...)
	return EndRecord(b, mark)
}

// BeginRecord appends h and room for the body length to b. Append the body
// to the returned slice, then call EndRecord with mark: the body can so be
// encoded in place, without a copy.
func (h *Header) BeginRecord(b []byte) (out []byte, mark int) {
	b = h.Append(b)
	mark = len(b)
	return append(b, 0, 0, 0, 0), mark
}

// EndRecord writes the length of the body that follows mark (as returned
// by BeginRecord) and returns b.
func EndRecord(b []byte, mark int) []byte {
	binary.BigEndian.PutUint32(b[mark:], uint32(len(b)-mark-bodyLenSize))
	return b
}

// View is a record's header read in place: its fields are slices of the
// record's bytes, so reading one allocates nothing. Header copies them out.
// A View is valid as long as the bytes it was read from are unchanged.
type View struct {
	rec  []byte
	ends [numFields]uint32 // end offset of each field's bytes
	body []byte
}

// Next reads the first record of a payload frame and returns it with the
// rest of the frame. The error wraps ErrTruncated, ErrVersion, ErrKind or
// ErrFieldTooLong; after an error the rest of the frame cannot be trusted
// and must be dropped.
func Next(frame []byte) (v View, rest []byte, err error) {
	n, err := v.scan(frame)
	if err != nil {
		return View{}, nil, err
	}
	if len(frame)-n < bodyLenSize {
		return View{}, nil, fmt.Errorf("%w: body length at offset %d needs %d bytes, %d remain",
			ErrTruncated, n, bodyLenSize, len(frame)-n)
	}
	bl := uint64(binary.BigEndian.Uint32(frame[n:]))
	n += bodyLenSize
	if bl > uint64(len(frame)-n) {
		return View{}, nil, fmt.Errorf("%w: body at offset %d is %d bytes, %d remain", ErrTruncated, n, bl, len(frame)-n)
	}
	end := n + int(bl)
	v.rec = frame[:end:end]
	v.body = frame[n:end:end]
	return v, frame[end:], nil
}

// scan checks the header at the start of b and records where its fields
// end; it returns the header's length.
func (v *View) scan(b []byte) (int, error) {
	if len(b) < 1 {
		return 0, fmt.Errorf("%w: empty frame", ErrTruncated)
	}
	if b[0] != Version {
		return 0, fmt.Errorf("%w: %d, want %d", ErrVersion, b[0], Version)
	}
	if len(b) < fixedLen {
		return 0, fmt.Errorf("%w: %d bytes, fixed part needs %d", ErrTruncated, len(b), fixedLen)
	}
	if k := Kind(b[1]); !k.Valid() {
		return 0, fmt.Errorf("%w: %d at offset 1", ErrKind, b[1])
	}
	off := fixedLen
	for i := range numFields {
		if len(b)-off < 2 {
			return 0, fmt.Errorf("%w: %s length at offset %d needs 2 bytes, %d remain",
				ErrTruncated, fieldNames[i], off, len(b)-off)
		}
		n := int(binary.BigEndian.Uint16(b[off:]))
		if n > MaxFieldLen {
			return 0, fmt.Errorf("%w: %s at offset %d is %d bytes, max %d",
				ErrFieldTooLong, fieldNames[i], off, n, MaxFieldLen)
		}
		off += 2
		if n > len(b)-off {
			return 0, fmt.Errorf("%w: %s at offset %d is %d bytes, %d remain",
				ErrTruncated, fieldNames[i], off, n, len(b)-off)
		}
		off += n
		v.ends[i] = uint32(off)
	}
	v.rec = b[:off:off]
	return off, nil
}

// Kind returns the record's kind.
func (v *View) Kind() Kind { return Kind(v.rec[1]) }

// ID returns the record's msg_id.
func (v *View) ID() (id MsgID) {
	copy(id[:], v.rec[4:20])
	return id
}

// Deadline returns the record's deadline, Unix nanoseconds (0: none).
func (v *View) Deadline() int64 { return int64(binary.BigEndian.Uint64(v.rec[20:28])) }

// Fanout reports the fanout flag.
func (v *View) Fanout() bool { return v.rec[2]&flagFanout != 0 }

// AckWanted reports the ack-wanted flag.
func (v *View) AckWanted() bool { return v.rec[2]&flagAck != 0 }

// RecordAckWanted reports the ack-wanted flag of rec, a record that begins
// with a header (false when too short to have one).
func RecordAckWanted(rec []byte) bool { return len(rec) >= fixedLen && rec[2]&flagAck != 0 }

// Attempt returns the resend count.
func (v *View) Attempt() uint8 { return v.rec[3] }

// field returns the bytes of field i in wire order.
func (v *View) field(i int) []byte {
	start := uint32(fixedLen + 2)
	if i > 0 {
		start = v.ends[i-1] + 2
	}
	return v.rec[start:v.ends[i]:v.ends[i]]
}

// Exchange, Topic, Server, Namespace, Version, Method, ReplyTo and Meta
// return the header's fields in place.
func (v *View) Exchange() []byte  { return v.field(0) }
func (v *View) Topic() []byte     { return v.field(1) }
func (v *View) Server() []byte    { return v.field(2) }
func (v *View) Namespace() []byte { return v.field(3) }
func (v *View) Version() []byte   { return v.field(4) }
func (v *View) Method() []byte    { return v.field(5) }
func (v *View) ReplyTo() []byte   { return v.field(6) }
func (v *View) Meta() []byte      { return v.field(7) }

// Body returns the record's body (nil for a View of a header alone).
func (v *View) Body() []byte { return v.body }

// Record returns the whole record's bytes, header, length and body.
func (v *View) Record() []byte { return v.rec }

// HeaderLen returns the length of the header part of the record.
func (v *View) HeaderLen() int { return int(v.ends[numFields-1]) }

// Header copies the header out: its strings and byte fields do not alias
// the record. An empty reply_to or meta is nil.
func (v *View) Header() Header {
	base := fixedLen + 2
	end := int(v.ends[5])
	s := string(v.rec[base:end]) // the six string fields, one allocation
	str := func(i int) string {
		f := v.field(i)
		if len(f) == 0 {
			return ""
		}
		start := int(v.ends[i]) - len(f) - base
		return s[start : start+len(f)]
	}
	h := Header{
		Kind:     v.Kind(),
		ID:       v.ID(),
		Deadline: v.Deadline(),
		Target: Target{
			Exchange:  str(0),
			Topic:     str(1),
			Server:    str(2),
			Namespace: str(3),
			Version:   str(4),
			Fanout:    v.Fanout(),
		},
		Method:    str(5),
		AckWanted: v.AckWanted(),
		Attempt:   v.Attempt(),
	}
	if r := v.ReplyTo(); len(r) > 0 {
		h.ReplyTo = append([]byte(nil), r...)
	}
	if m := v.Meta(); len(m) > 0 {
		h.Meta = append([]byte(nil), m...)
	}
	return h
}

// Reader reads the records of a payload frame in place, one at a time:
//
//	var r envelope.Reader
//	r.Reset(frame)
//	for r.Next() {
//		v := r.View()
//		...
//	}
//	if err := r.Err(); err != nil { ... } // the rest of the frame was dropped
//
// The zero Reader reads nothing. A Reader allocates nothing.
type Reader struct {
	rest  []byte
	v     View
	err   error
	n     int
	empty bool
}

// Reset starts reading frame.
func (r *Reader) Reset(frame []byte) {
	*r = Reader{rest: frame, empty: len(frame) == 0}
}

// Next reads the next record; it returns false at the end of the frame or
// at a malformed record (see Err).
func (r *Reader) Next() bool {
	if r.err != nil || len(r.rest) == 0 {
		if r.empty && r.err == nil {
			r.err = fmt.Errorf("%w: empty payload", ErrTruncated)
		}
		return false
	}
	v, rest, err := Next(r.rest)
	if err != nil {
		r.err, r.rest = err, nil
		return false
	}
	r.v, r.rest = v, rest
	r.n++
	return true
}

// View returns the record Next read. It is valid until the next call of
// Next or Reset.
func (r *Reader) View() *View { return &r.v }

// Read returns the number of records read so far.
func (r *Reader) Read() int { return r.n }

// Err returns the error that ended the reading of a malformed frame (an
// empty frame is one), or nil; the records after it cannot be trusted and
// were not read.
func (r *Reader) Err() error { return r.err }

// Records calls f with each record of a payload frame, in order, until f
// returns false. It returns the number of records read and the error that
// stopped it, if the frame is malformed: the records before it were passed
// to f, the rest of the frame is not. An empty frame is an error.
func Records(frame []byte, f func(v *View) bool) (int, error) {
	var r Reader
	r.Reset(frame)
	for r.Next() {
		if !f(r.View()) {
			return r.Read(), nil
		}
	}
	return r.Read(), r.Err()
}
