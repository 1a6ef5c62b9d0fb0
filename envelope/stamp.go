package envelope

import (
	"encoding/binary"
	"errors"
)

// A router proxy routes answers back by a stamp it writes itself into the
// reply_to of each request it forwards, never by what the client wrote
// there (docs/PROTOCOL.md §4.6):
//
//	0x00, n (1 byte), the client's routing id at the proxy (n bytes),
//	then the client's CURVE public key (32 bytes) or nothing
//
// The server copies reply_to into its answers, and the proxy sends each
// answer down the connection the stamp names. A client's own reply
// identity never starts with 0x00, so a stamp cannot be mistaken for one.

// ErrStamp is returned for a reply_to that is not a router proxy's stamp.
var ErrStamp = errors.New("envelope: reply_to is not a router proxy's stamp")

// AppendStamp appends a stamp of routing id from and, when not nil, the
// caller's public key.
func AppendStamp(b, from []byte, caller *[32]byte) []byte {
	b = append(b, 0, byte(len(from)))
	b = append(b, from...)
	if caller != nil {
		b = append(b, caller[:]...)
	}
	return b
}

// ParseStamp reads a stamp: the routing id and the caller's key (nil when
// the stamp has none). It allocates nothing.
func ParseStamp(replyTo []byte) (from, caller []byte, err error) {
	if len(replyTo) < 2 || replyTo[0] != 0 || len(replyTo) < 2+int(replyTo[1]) || replyTo[1] == 0 {
		return nil, nil, ErrStamp
	}
	n := 2 + int(replyTo[1])
	from, rest := replyTo[2:n], replyTo[n:]
	switch len(rest) {
	case 0:
		return from, nil, nil
	case 32:
		return from, rest, nil
	}
	return nil, nil, ErrStamp
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
