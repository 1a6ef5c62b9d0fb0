package curve

import (
	"errors"
	"fmt"
)

// z85Chars is the Z85 alphabet (ZeroMQ RFC 32).
const z85Chars = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"

// z85Index maps a byte to its Z85 value plus one (0: not a Z85 character).
var z85Index = func() (t [256]byte) {
	for i := range len(z85Chars) {
		t[z85Chars[i]] = byte(i + 1)
	}
	return t
}()

// ErrZ85 is returned for text that is not Z85.
var ErrZ85 = errors.New("curve: not Z85 text")

// Z85Encode encodes b, whose length must be a multiple of 4, as Z85 text
// (5 characters per 4 bytes). It panics on any other length.
func Z85Encode(b []byte) string {
	if len(b)%4 != 0 {
		panic("curve: Z85Encode of a length that is not a multiple of 4")
	}
	out := make([]byte, 0, len(b)/4*5)
	for i := 0; i < len(b); i += 4 {
		v := uint32(b[i])<<24 | uint32(b[i+1])<<16 | uint32(b[i+2])<<8 | uint32(b[i+3])
		var chunk [5]byte
		for j := 4; j >= 0; j-- {
			chunk[j] = z85Chars[v%85]
			v /= 85
		}
		out = append(out, chunk[:]...)
	}
	return string(out)
}

// Z85Decode decodes Z85 text, whose length must be a multiple of 5.
func Z85Decode(s string) ([]byte, error) {
	if len(s)%5 != 0 {
		return nil, fmt.Errorf("%w: %d characters, want a multiple of 5", ErrZ85, len(s))
	}
	out := make([]byte, 0, len(s)/5*4)
	for i := 0; i < len(s); i += 5 {
		var v uint64
		for j := range 5 {
			d := z85Index[s[i+j]]
			if d == 0 {
				return nil, fmt.Errorf("%w: character %q at %d", ErrZ85, s[i+j], i+j)
			}
			v = v*85 + uint64(d-1)
		}
		if v > 0xffffffff {
			return nil, fmt.Errorf("%w: group at %d overflows", ErrZ85, i)
		}
		out = append(out, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	}
	return out, nil
}
