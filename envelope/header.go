package envelope

import (
	"encoding/binary"
	"fmt"
	"slices"
	"time"
)

// Version is the protocol version this package writes and accepts, carried
// in byte 0 of every header. Version 1 (two frames per message, seven
// header fields) is not accepted: Decode reports it as ErrVersion.
const Version = 2

// MaxFieldLen is the largest number of bytes any one variable-length field of
// the header (exchange, topic, server, namespace, version, method, reply_to)
// may hold.
const MaxFieldLen = 4096

const (
	fixedLen   = 28 // version, kind, flags, attempt, msg_id, deadline
	numFields  = 8
	flagFanout = 1 << 0
	flagAck    = 1 << 1
	knownFlags = flagFanout | flagAck

	// maxHeaderLen is the size of the largest valid header.
	maxHeaderLen = fixedLen + numFields*(2+MaxFieldLen)
)

// fieldNames are the header's variable-length fields in wire order; errors
// name fields with them.
var fieldNames = [numFields]string{
	"exchange", "topic", "server", "namespace", "version", "method", "reply_to", "meta",
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
	// AckWanted asks the receiver to acknowledge the message (flags bit 1);
	// the sender resends until an ACK (or, for a CALL, the answer) comes.
	AckWanted bool
	// Attempt counts the resends of a message: 0 when first sent, n for the
	// n-th resend (byte 3; saturates at 255).
	Attempt uint8
	// Meta is the message's metadata: a msgpack map of string keys to
	// string values, or empty for none (see AppendMeta and DecodeMeta).
	Meta []byte
}

// field returns the i-th string field in wire order (0 exchange ... 5
// method); reply_to and meta, fields 6 and 7, are bytes and handled by
// callers.
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
		n := h.fieldLen(i)
		if n > MaxFieldLen {
			return fmt.Errorf("%w: %s is %d bytes, max %d", ErrFieldTooLong, fieldNames[i], n, MaxFieldLen)
		}
	}
	return nil
}

// fieldLen returns the length of field i in wire order.
func (h *Header) fieldLen(i int) int {
	switch i {
	case 6:
		return len(h.ReplyTo)
	case 7:
		return len(h.Meta)
	}
	return len(h.field(i))
}

// size returns the length in bytes of h's encoding.
func (h *Header) size() int {
	return fixedLen + 2*numFields +
		len(h.Target.Exchange) + len(h.Target.Topic) + len(h.Target.Server) +
		len(h.Target.Namespace) + len(h.Target.Version) + len(h.Method) + len(h.ReplyTo) + len(h.Meta)
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
	b = append(b, Version, byte(h.Kind), flags, h.Attempt)
	b = append(b, h.ID[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(h.Deadline))
	b = appendField(b, h.Target.Exchange)
	b = appendField(b, h.Target.Topic)
	b = appendField(b, h.Target.Server)
	b = appendField(b, h.Target.Namespace)
	b = appendField(b, h.Target.Version)
	b = appendField(b, h.Method)
	b = binary.BigEndian.AppendUint16(b, uint16(len(h.ReplyTo)))
	b = append(b, h.ReplyTo...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(h.Meta)))
	return append(b, h.Meta...)
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

// Decode decodes a header alone (a record's header without the body
// length and body that follow it in a record). It is strict and safe on
// untrusted input: it never panics, checks every length against the bytes
// that remain, and rejects trailing bytes. The error wraps ErrTruncated,
// ErrVersion, ErrKind, ErrFieldTooLong or ErrTrailing, with the offset and
// field concerned. Flag bits other than fanout and ack-wanted are ignored.
//
// The decoded Header does not alias b: its strings, ReplyTo and Meta are
// copies. An empty reply_to or meta decodes as nil.
func Decode(b []byte) (Header, error) {
	var v View
	n, err := v.scan(b)
	if err != nil {
		return Header{}, err
	}
	if n != len(b) {
		return Header{}, fmt.Errorf("%w: %d bytes at offset %d", ErrTrailing, len(b)-n, n)
	}
	return v.Header(), nil
}
