package envelope

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"sync"
	"sync/atomic"
)

// MsgID is a message's 128-bit identifier. It correlates a reply with its
// call and lets a receiver recognise a resent message. The zero MsgID means
// "no id"; NewMsgID never returns it.
type MsgID [16]byte

var (
	idOnce    sync.Once
	idPrefix  [8]byte       // chosen once per process; written under idOnce
	idCounter atomic.Uint64 // incremented per id
)

// NewMsgID returns a new process-unique, and with overwhelming probability
// globally unique, MsgID: 8 random bytes chosen once per process (from
// crypto/rand) followed by a big-endian 64-bit counter that starts at 1.
// It does not allocate and makes no system call after the first one.
// It is safe for concurrent use.
func NewMsgID() MsgID {
	idOnce.Do(func() { _, _ = rand.Read(idPrefix[:]) }) // crypto/rand.Read never fails
	var id MsgID
	copy(id[:8], idPrefix[:])
	binary.BigEndian.PutUint64(id[8:], idCounter.Add(1))
	return id
}

// String returns the id as 32 lowercase hex characters.
func (id MsgID) String() string {
	var buf [32]byte
	hex.Encode(buf[:], id[:])
	return string(buf[:])
}

// IsZero reports whether id is the zero MsgID.
func (id MsgID) IsZero() bool {
	return id == MsgID{}
}
