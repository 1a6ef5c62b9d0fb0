package envelope

import (
	"bytes"
	"strings"
	"testing"
)

func FuzzDecode(f *testing.F) {
	f.Add(mustEncode(f, sampleHeader()))
	f.Add(mustEncode(f, Header{Kind: KindCast}))
	f.Add(mustEncode(f, Header{Kind: KindReply, ID: NewMsgID(), Target: Target{Fanout: true}}))
	f.Add(mustEncode(f, Header{Kind: KindError, Method: strings.Repeat("m", 300), ReplyTo: []byte{0}}))
	f.Add([]byte{})
	f.Add([]byte{Version})
	f.Add([]byte{1, 1})
	h := sampleHeader()
	h.AckWanted, h.Attempt = true, 200
	f.Add(mustEncode(f, h))

	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := Decode(b)
		if err != nil {
			return
		}
		re, err := h.Encode()
		if err != nil {
			t.Fatalf("decoded header does not validate: %v", err)
		}
		h2, err := Decode(re)
		if err != nil {
			t.Fatalf("re-encoded header does not decode: %v", err)
		}
		if !equalHeaders(h, h2) {
			t.Fatalf("re-encode changed the header:\n%+v\n%+v", h, h2)
		}
		// The encoding is canonical apart from ignored flag bits.
		canon := bytes.Clone(b)
		canon[2] &= knownFlags
		if !bytes.Equal(re, canon) {
			t.Fatalf("re-encoding differs from input:\n% x\n% x", re, canon)
		}
	})
}

func FuzzDecodeError(f *testing.F) {
	f.Add(EncodeError("NoSuchMethod", "no such method"))
	f.Add([]byte{0x80})
	f.Add([]byte{0xc0})
	f.Fuzz(func(t *testing.T, b []byte) {
		code, message, err := DecodeError(b)
		if err != nil {
			return
		}
		c2, m2, err := DecodeError(EncodeError(code, message))
		if err != nil || c2 != code || m2 != message {
			t.Fatalf("re-encoding %q/%q gave %q/%q, %v", code, message, c2, m2, err)
		}
	})
}

// FuzzRecords checks that reading a payload of records never panics, and
// that what it reads re-encodes to the same bytes.
func FuzzRecords(f *testing.F) {
	rec := sampleRecord(f)
	f.Add(rec)
	f.Add(append(bytes.Clone(rec), rec...))
	f.Add(rec[:len(rec)-1])
	f.Add(append(bytes.Clone(rec), rec[:30]...))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var re []byte
		_, err := Records(b, func(v *View) bool {
			h := v.Header()
			if err := h.Validate(); err != nil {
				t.Fatalf("read header does not validate: %v", err)
			}
			re = h.AppendRecord(re, v.Body())
			return true
		})
		if err != nil {
			return
		}
		canon := bytes.Clone(b)
		for off := 0; off < len(canon); {
			v, _, err := Next(canon[off:])
			if err != nil {
				t.Fatalf("second read failed: %v", err)
			}
			canon[off+2] &= knownFlags
			off += len(v.Record())
		}
		if !bytes.Equal(re, canon) {
			t.Fatalf("re-encoding differs:\n% x\n% x", re, canon)
		}
	})
}
