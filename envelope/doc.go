// Package envelope is relay's wire format, protocol version 2: records (a
// header, a body length and a body), several of which may travel in one
// ZeroMQ payload frame, and the msgpack encoding of bodies.
//
// It is a leaf package: it does no I/O and imports nothing else of relay's.
// The full protocol, with a worked example, is in docs/PROTOCOL.md.
//
// # Messages
//
// A message sent on a DEALER is one frame, [payload]; the same message
// received on a ROUTER is two, [routing-id, payload] ([Payload],
// [ParseRouted]). A payload holds one or more records back to back: read
// them in place with a [Reader] (or [Records]), which checks each one and
// stops at the first malformed record. Bodies are msgpack ([EncodeBody],
// [AppendBody], [DecodeBody]); the body of an ERROR is the map
// {"code": string, "message": string} ([EncodeError], [DecodeError]); the
// header's meta field is a msgpack map of strings ([AppendMeta],
// [DecodeMeta]).
//
// # Record, version 2
//
// All integers are big-endian.
//
//	offset 0   u8   version (= 2)
//	offset 1   u8   kind (see Kind)
//	offset 2   u8   flags: bit 0 = fanout, bit 1 = ack wanted; other bits sent as 0, ignored on receipt
//	offset 3   u8   attempt: 0, or the count of resends
//	offset 4   16B  msg_id
//	offset 20  i64  deadline, Unix nanoseconds, 0 = none
//	offset 28  8 fields, each a u16 length then that many bytes, in order:
//	           exchange, topic, server, namespace, version, method, reply_to, meta
//	then       u32  body length, then the body
//
// Every field is at most [MaxFieldLen] bytes. Reading is strict: every
// length is checked against the bytes that remain and nothing panics, so it
// is safe on bytes from the network.
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
//	rec, mark := h.BeginRecord(buf[:0])
//	rec, err := envelope.AppendBody(rec, args) // the body, encoded in place
//	rec = envelope.EndRecord(rec, mark)
//	// send [rec] (or several records in one frame) on a DEALER
//
//	// on the ROUTER side:
//	from, payload, err := envelope.ParseRouted(frames)
//	var r envelope.Reader
//	for r.Reset(payload); r.Next(); {
//		v := r.View() // fields in place: v.Kind(), v.ID(), v.Topic(), v.Body() ...
//	}
//	if err := r.Err(); err != nil { ... } // the rest of the payload was dropped
//
// # Concurrency
//
// All functions are safe for concurrent use. A [Header] is a plain value;
// a decoded Header never aliases its input. A [View] and the body it
// returns alias the record's bytes, which must not change while they are
// used.
package envelope
