package envelope

import (
	"encoding/binary"
	"errors"
)

// A router proxy routes answers back by a stamp it writes itself into the
// reply_to of each request it forwards, never by what the client wrote
// there (docs/PROTOCOL.md §4.6):
//
//	0x00,
//	n (1 byte), the client's routing id at the proxy's front (n bytes),
//	m (1 byte), the server's routing id at the proxy's back (m bytes),
//	then the client's CURVE public key (32 bytes) or nothing
//
// The server copies reply_to into its answers; the proxy takes an answer
// only from the server the stamp names and sends it down the client
// connection the stamp names. A client's own reply identity never starts
// with 0x00, so a stamp cannot be mistaken for one.

// ErrStamp is returned for a reply_to that is not a router proxy's stamp.
var ErrStamp = errors.New("envelope: reply_to is not a router proxy's stamp")

// AppendStamp appends a stamp of the client's routing id from, the
// server's routing id to (each 1 to 255 bytes), and, when not nil, the
// caller's public key.
func AppendStamp(b, from, to []byte, caller *[32]byte) []byte {
	b = append(b, 0, byte(len(from)))
	b = append(b, from...)
	b = append(b, byte(len(to)))
	b = append(b, to...)
	if caller != nil {
		b = append(b, caller[:]...)
	}
	return b
}

// ParseStamp reads a stamp: the client's and the server's routing ids and
// the caller's key (nil when the stamp has none). It allocates nothing.
func ParseStamp(replyTo []byte) (from, to, caller []byte, err error) {
	if len(replyTo) < 2 || replyTo[0] != 0 {
		return nil, nil, nil, ErrStamp
	}
	rest := replyTo[1:]
	field := func() []byte {
		if len(rest) < 1 || rest[0] == 0 || len(rest) < 1+int(rest[0]) {
			return nil
		}
		f := rest[1 : 1+int(rest[0])]
		rest = rest[1+int(rest[0]):]
		return f
	}
	if from = field(); from == nil {
		return nil, nil, nil, ErrStamp
	}
	if to = field(); to == nil {
		return nil, nil, nil, ErrStamp
	}
	switch len(rest) {
	case 0:
		return from, to, nil, nil
	case 32:
		return from, to, rest, nil
	}
	return nil, nil, nil, ErrStamp
}

// AppendWithReplyTo appends v's record with its reply_to replaced by
// replyTo (at most MaxFieldLen bytes) and everything else unchanged.
func (v *View) AppendWithReplyTo(b, replyTo []byte) []byte {
	start := int(v.ends[5]) // reply_to's length field
	end := int(v.ends[6])   // after reply_to
	b = append(b, v.rec[:start]...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(replyTo)))
	b = append(b, replyTo...)
	return append(b, v.rec[end:]...)
}
