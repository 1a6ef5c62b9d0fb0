package envelope

import (
	"encoding/binary"
	"fmt"
	"slices"
	"time"
)

// Version is the protocol version this package writes and accepts, carried
// in byte 0 of every header.
const Version = 1

// MaxFieldLen is the largest number of bytes any one variable-length field of
// the header (exchange, topic, server, namespace, version, method, reply_to)
// may hold.
const MaxFieldLen = 4096

const (
	fixedLen   = 28 // version, kind, flags, reserved, msg_id, deadline
	numFields  = 7
	flagFanout = 1 << 0
	flagAck    = 1 << 1
	knownFlags = flagFanout | flagAck

	// maxHeaderLen is the size of the largest valid header.
	maxHeaderLen = fixedLen + numFields*(2+MaxFieldLen)
)

// fieldNames are the header's variable-length fields in wire order; errors
// name fields with them.
var fieldNames = [numFields]string{
	"exchange", "topic", "server", "namespace", "version", "method", "reply_to",
}

// Target names where a message goes.
type Target struct {
	// Exchange scopes topics; empty is the default exchange.
	Exchange string
	// Topic is the service the message is for.
	Topic string
	// Server, when non-empty, directs the message to that one server of
	// the topic; empty means any server of the topic.
	Server string
	// Namespace must equal the namespace the receiving endpoint serves.
	Namespace string
	// Version is the API version "MAJOR.MINOR" the caller needs; empty
	// means any.
	Version string
	// Fanout marks a message for every server of the topic (flags bit 0).
	Fanout bool
}

// Header is the decoded header frame of a message.
type Header struct {
	// Kind is the kind of message.
	Kind Kind
	// ID identifies the message; a REPLY or ERROR carries its CALL's ID.
	ID MsgID
	// Deadline is the absolute deadline in Unix nanoseconds; 0 means none.
	Deadline int64
	// Target is where the message goes.
	Target Target
	// Method is the name of the method to invoke.
	Method string
	// ReplyTo is the caller's reply identity: the ZeroMQ routing id of the
	// caller's DEALER. It may be empty.
	ReplyTo []byte
	// AckWanted asks the receiver to send an ACK as soon as it has the
	// message (flags bit 1); the sender resends until one comes.
	AckWanted bool
}

// field returns the i-th string field in wire order (0 exchange ... 5
// method); reply_to, field 6, is not a string and is handled by callers.
func (h *Header) field(i int) string {
	switch i {
	case 0:
		return h.Target.Exchange
	case 1:
		return h.Target.Topic
	case 2:
		return h.Target.Server
	case 3:
		return h.Target.Namespace
	case 4:
		return h.Target.Version
	case 5:
		return h.Method
	}
	return ""
}

// Validate checks that h can be encoded: its Kind is valid and no field is
// longer than MaxFieldLen. The error wraps ErrKind or ErrFieldTooLong and
// names the field.
func (h *Header) Validate() error {
	if !h.Kind.Valid() {
		return fmt.Errorf("%w: %d", ErrKind, uint8(h.Kind))
	}
	for i := range numFields {
		n := len(h.ReplyTo)
		if i < numFields-1 {
			n = len(h.field(i))
		}
		if n > MaxFieldLen {
			return fmt.Errorf("%w: %s is %d bytes, max %d", ErrFieldTooLong, fieldNames[i], n, MaxFieldLen)
		}
	}
	return nil
}

// size returns the length in bytes of h's encoding.
func (h *Header) size() int {
	return fixedLen + 2*numFields +
		len(h.Target.Exchange) + len(h.Target.Topic) + len(h.Target.Server) +
		len(h.Target.Namespace) + len(h.Target.Version) + len(h.Method) + len(h.ReplyTo)
}

// Append appends the binary encoding of h to b and returns the extended
// slice. It grows b at most once and never fails. It assumes h is valid:
// call Validate first (or use Encode) on any header not built from
// constants. A field longer than MaxFieldLen produces a frame that receivers
// reject.
func (h *Header) Append(b []byte) []byte {
	b = slices.Grow(b, h.size())
	var flags byte
	if h.Target.Fanout {
		flags |= flagFanout
	}
	if h.AckWanted {
		flags |= flagAck
	}
	b = append(b, Version, byte(h.Kind), flags, 0)
	b = append(b, h.ID[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(h.Deadline))
	b = appendField(b, h.Target.Exchange)
	b = appendField(b, h.Target.Topic)
	b = appendField(b, h.Target.Server)
	b = appendField(b, h.Target.Namespace)
	b = appendField(b, h.Target.Version)
	b = appendField(b, h.Method)
	b = binary.BigEndian.AppendUint16(b, uint16(len(h.ReplyTo)))
	return append(b, h.ReplyTo...)
}

func appendField(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// Encode validates h and returns its binary encoding in a new slice.
func (h *Header) Encode() ([]byte, error) {
	if err := h.Validate(); err != nil {
		return nil, err
	}
	return h.Append(nil), nil
}

// DeadlineTime returns the deadline as a time.Time, or the zero Time when
// there is none.
func (h *Header) DeadlineTime() time.Time {
	if h.Deadline == 0 {
		return time.Time{}
	}
	return time.Unix(0, h.Deadline)
}

// Decode decodes a header frame. It is strict and safe on untrusted input:
// it never panics, checks every length against the bytes that remain, and
// rejects trailing bytes. The error wraps ErrTruncated, ErrVersion, ErrKind,
// ErrFieldTooLong or ErrTrailing, with the offset and field concerned.
// Flag bits other than fanout and the reserved byte are ignored.
//
// The decoded Header does not alias b: its strings and ReplyTo are copies.
// An empty reply_to decodes as a nil ReplyTo.
func Decode(b []byte) (Header, error) {
	if len(b) < 1 {
		return Header{}, fmt.Errorf("%w: empty frame", ErrTruncated)
	}
	if b[0] != Version {
		return Header{}, fmt.Errorf("%w: %d, want %d", ErrVersion, b[0], Version)
	}
	if len(b) < fixedLen {
		return Header{}, fmt.Errorf("%w: %d bytes, fixed part needs %d", ErrTruncated, len(b), fixedLen)
	}
	k := Kind(b[1])
	if !k.Valid() {
		return Header{}, fmt.Errorf("%w: %d at offset 1", ErrKind, b[1])
	}

	// First pass: find and check every field, without allocating.
	var ext [numFields][2]int // [start, end) of each field's bytes
	off := fixedLen
	for i := range numFields {
		if len(b)-off < 2 {
			return Header{}, fmt.Errorf("%w: %s length at offset %d needs 2 bytes, %d remain",
				ErrTruncated, fieldNames[i], off, len(b)-off)
		}
		n := int(binary.BigEndian.Uint16(b[off:]))
		if n > MaxFieldLen {
			return Header{}, fmt.Errorf("%w: %s at offset %d is %d bytes, max %d",
				ErrFieldTooLong, fieldNames[i], off, n, MaxFieldLen)
		}
		off += 2
		if n > len(b)-off {
			return Header{}, fmt.Errorf("%w: %s at offset %d is %d bytes, %d remain",
				ErrTruncated, fieldNames[i], off, n, len(b)-off)
		}
		ext[i] = [2]int{off, off + n}
		off += n
	}
	if off != len(b) {
		return Header{}, fmt.Errorf("%w: %d bytes at offset %d", ErrTrailing, len(b)-off, off)
	}

	// Second pass: copy the six string fields with one allocation (one
	// string spanning them, sliced), and reply_to with another.
	base := ext[0][0]
	s := string(b[base:ext[numFields-2][1]])
	str := func(i int) string { return s[ext[i][0]-base : ext[i][1]-base] }
	h := Header{
		Kind:     k,
		Deadline: int64(binary.BigEndian.Uint64(b[20:28])),
		Target: Target{
			Exchange:  str(0),
			Topic:     str(1),
			Server:    str(2),
			Namespace: str(3),
			Version:   str(4),
			Fanout:    b[2]&flagFanout != 0,
		},
		Method:    str(5),
		AckWanted: b[2]&flagAck != 0,
	}
	copy(h.ID[:], b[4:20])
	if r := b[ext[6][0]:ext[6][1]]; len(r) > 0 {
		h.ReplyTo = append([]byte(nil), r...)
	}
	return h, nil
}
