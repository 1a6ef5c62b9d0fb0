package curve

import (
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"fmt"
)

// Key is a CURVE key (Curve25519, as ZeroMQ's CURVE and libsodium's
// crypto_box use it): a public or a secret key. Its text form is Z85, 40
// characters.
type Key [32]byte

// KeyLen is the length of a key's Z85 text.
const KeyLen = 40

// String returns the key in Z85. Do not print a secret key.
func (k Key) String() string { return Z85Encode(k[:]) }

// IsZero reports whether k is the zero key (no key).
func (k Key) IsZero() bool { return k == Key{} }

// ErrKey is returned for text that is not a Z85 key.
var ErrKey = errors.New("curve: not a CURVE key (want 40 characters of Z85)")

// ParseKey parses a key's Z85 text. The error does not quote the text (it
// may be a secret).
func ParseKey(s string) (Key, error) {
	if len(s) != KeyLen {
		return Key{}, fmt.Errorf("%w: %d characters", ErrKey, len(s))
	}
	k, ok := keyOf([]byte(s))
	if !ok {
		return Key{}, ErrKey
	}
	return k, nil
}

// KeyOfZ85 parses a key's Z85 text given as bytes (as ZeroMQ's User-Id
// carries it), without allocating.
func KeyOfZ85(b []byte) (Key, bool) {
	if len(b) != KeyLen {
		return Key{}, false
	}
	return keyOf(b)
}

// keyOf decodes 40 characters of Z85.
func keyOf(b []byte) (k Key, ok bool) {
	for i := 0; i < KeyLen; i += 5 {
		var v uint64
		for j := range 5 {
			d := z85Index[b[i+j]]
			if d == 0 {
				return Key{}, false
			}
			v = v*85 + uint64(d-1)
		}
		if v > 0xffffffff {
			return Key{}, false
		}
		o := i / 5 * 4
		k[o], k[o+1], k[o+2], k[o+3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
	}
	return k, true
}

// KeyPair is a node's CURVE identity: the public key others put on their
// allow-lists and the secret key that proves it.
type KeyPair struct {
	Public, Secret Key
}

// Generate returns a new random key pair.
func Generate() (KeyPair, error) {
	var kp KeyPair
	if _, err := rand.Read(kp.Secret[:]); err != nil {
		return KeyPair{}, fmt.Errorf("curve: generate: %w", err)
	}
	pub, err := PublicOf(kp.Secret)
	if err != nil {
		return KeyPair{}, err
	}
	kp.Public = pub
	return kp, nil
}

// PublicOf returns the public key of a secret key (X25519 with the base
// point, as libsodium's crypto_scalarmult_base).
func PublicOf(secret Key) (Key, error) {
	priv, err := ecdh.X25519().NewPrivateKey(secret[:])
	if err != nil {
		return Key{}, fmt.Errorf("curve: secret key: %w", err)
	}
	var pub Key
	copy(pub[:], priv.PublicKey().Bytes())
	return pub, nil
}
