package envelope

import (
	"crypto/aes"
	"crypto/cipher"
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
	idBlock   cipher.Block  // AES-128 under a key chosen once per process
	idSalt    uint64        // chosen once per process
	idCounter atomic.Uint64 // incremented per id
	idScratch = sync.Pool{New: func() any { return new([32]byte) }}
)

// NewMsgID returns a new unique and unpredictable MsgID: a per-process
// counter and salt encrypted with AES-128 under a random per-process key.
// The ids of one process never repeat (AES is a permutation of the counter
// values), ids of different processes collide with negligible probability,
// and seeing some ids does not tell the next one. It makes no system call
// after the first and is safe for concurrent use.
func NewMsgID() MsgID {
	idOnce.Do(initMsgIDs)
	buf := idScratch.Get().(*[32]byte)
	for {
		binary.BigEndian.PutUint64(buf[0:8], idSalt)
		binary.BigEndian.PutUint64(buf[8:16], idCounter.Add(1))
		idBlock.Encrypt(buf[16:32], buf[0:16])
		var id MsgID
		copy(id[:], buf[16:32])
		if !id.IsZero() {
			idScratch.Put(buf)
			return id
		}
	}
}

func initMsgIDs() {
	var key [16 + 8]byte
	_, _ = rand.Read(key[:]) // crypto/rand.Read never fails
	b, err := aes.NewCipher(key[:16])
	if err != nil {
		panic("envelope: aes: " + err.Error()) // a 16-byte key is always valid
	}
	idBlock, idSalt = b, binary.BigEndian.Uint64(key[16:])
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
