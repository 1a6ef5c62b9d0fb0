package envelope

import "strconv"

// Kind is the kind of a message, carried in byte 1 of the header.
type Kind uint8

// The kinds of message. Version 1 senders use CALL, CAST, REPLY and ERROR;
// FANOUT, NOTIFY, ACK and HEARTBEAT are reserved for later protocol
// versions: they decode, and version 1 receivers drop (and count) them.
const (
	// KindCall is a request that expects exactly one REPLY or ERROR with the
	// same ID.
	KindCall Kind = 1
	// KindCast is a one-way request; nothing is sent back.
	KindCast Kind = 2
	// KindReply answers a CALL; its body is the handler's result.
	KindReply Kind = 3
	// KindError answers a CALL that failed; its body is an error map (see
	// EncodeError).
	KindError Kind = 4
	// KindFanout is reserved: a cast to every server of a topic.
	KindFanout Kind = 5
	// KindNotify is reserved: a notification to listener pools.
	KindNotify Kind = 6
	// KindAck is reserved: acknowledges receipt of a message by ID.
	KindAck Kind = 7
	// KindHeartbeat is reserved: application-level liveness.
	KindHeartbeat Kind = 8
	// KindCancel tells the server of a CALL that its caller gave up (its
	// context was cancelled): the handler's context is cancelled and no
	// answer is sent. Its ID is the CALL's; its body is empty.
	KindCancel Kind = 9
)

var kindNames = [...]string{
	KindCall:      "CALL",
	KindCast:      "CAST",
	KindReply:     "REPLY",
	KindError:     "ERROR",
	KindFanout:    "FANOUT",
	KindNotify:    "NOTIFY",
	KindAck:       "ACK",
	KindHeartbeat: "HEARTBEAT",
	KindCancel:    "CANCEL",
}

// String returns the kind's name, such as "CALL", or "KIND(n)" for an
// unknown kind.
func (k Kind) String() string {
	if k.Valid() {
		return kindNames[k]
	}
	return "KIND(" + strconv.Itoa(int(k)) + ")"
}

// Valid reports whether k is one of the kinds defined above.
func (k Kind) Valid() bool {
	return k >= KindCall && k <= KindCancel
}
