// Package envelope is relay's wire format: the header frame that travels in
// front of every message body, the framing of whole messages on DEALER and
// ROUTER sockets, and the msgpack encoding of bodies.
//
// It is a leaf package: it does no I/O and imports nothing else of relay's.
// The full protocol, with a worked example, is in docs/PROTOCOL.md.
//
// # Messages
//
// A message sent on a DEALER is two frames, [header, body]; the same message
// received on a ROUTER is three, [routing-id, header, body]. Use [Parse] and
// [ParseRouted] to split them. Bodies are msgpack ([EncodeBody],
// [DecodeBody]); the body of an ERROR reply is the map
// {"code": string, "message": string} ([EncodeError], [DecodeError]).
//
// # Header frame, version 1
//
// All integers are big-endian.
//
//	offset 0   u8   version (= 1)
//	offset 1   u8   kind (see Kind)
//	offset 2   u8   flags: bit 0 = fanout; other bits sent as 0, ignored on receipt
//	offset 3   u8   reserved: sent as 0, ignored on receipt
//	offset 4   16B  msg_id
//	offset 20  i64  deadline, Unix nanoseconds, 0 = none
//	offset 28  7 fields, each a u16 length then that many bytes, in order:
//	           exchange, topic, server, namespace, version, method, reply_to
//
// Every field is at most [MaxFieldLen] bytes. [Decode] is strict: it checks
// every length against the bytes that remain, rejects trailing bytes, and
// never panics, so it is safe on bytes from the network.
//
// # Usage
//
//	h := envelope.Header{
//		Kind:    envelope.KindCall,
//		ID:      envelope.NewMsgID(),
//		Target:  envelope.Target{Topic: "compute"},
//		Method:  "add",
//		ReplyTo: nodeID,
//	}
//	if err := h.Validate(); err != nil { ... }
//	hdr := h.Append(buf[:0])
//	body, err := envelope.EncodeBody(args)
//	// send [hdr, body] on a DEALER
//
//	// on the ROUTER side:
//	from, h, body, err := envelope.ParseRouted(frames)
//
// # Concurrency
//
// All functions are safe for concurrent use. A [Header] is a plain value:
// methods on one Header must not race with writes to it, and Header values
// are not shared by this package. Decoded headers never alias their input,
// so the input frame may be reused; the body returned by [Parse] and
// [ParseRouted] does alias its frame.
package envelope
