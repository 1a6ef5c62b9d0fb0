package envelope

import (
	"bytes"
	"errors"
	"fmt"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// EncodeBody returns the msgpack encoding of v; a nil v encodes as msgpack
// nil. Integers use their smallest msgpack form. The error, if any, comes
// from msgpack (for example an unsupported type).
func EncodeBody(v any) ([]byte, error) { return AppendBody(nil, v) }

// appender is an io.Writer (and msgpack's byte writer) that appends to a
// slice, so that a body is encoded in place after its header.
type appender struct{ b []byte }

func (a *appender) Write(p []byte) (int, error) { a.b = append(a.b, p...); return len(p), nil }
func (a *appender) WriteByte(c byte) error      { a.b = append(a.b, c); return nil }

var (
	appenders = sync.Pool{New: func() any { return new(appender) }}
	readers   = sync.Pool{New: func() any { return new(bytes.Reader) }}
)

// AppendBody appends the msgpack encoding of v to b (see EncodeBody). On
// error b is returned unchanged in length.
func AppendBody(b []byte, v any) ([]byte, error) {
	a := appenders.Get().(*appender)
	n := len(b)
	a.b = b
	enc := msgpack.GetEncoder()
	enc.Reset(a)
	enc.UseCompactInts(true)
	err := enc.Encode(v)
	msgpack.PutEncoder(enc)
	b = a.b
	a.b = nil
	appenders.Put(a)
	if err != nil {
		return b[:n], fmt.Errorf("envelope: encode body: %w", err)
	}
	return b, nil
}

// DecodeBody decodes the msgpack value in b into v, which must be a
// non-nil pointer. b must hold exactly one msgpack value. The error wraps
// the cause. Unlike msgpack.Unmarshal, it rejects trailing bytes, and a
// length that the bytes cannot hold (see checkBody) before decoding.
func DecodeBody(b []byte, v any) error {
	if err := checkBody(b); err != nil {
		return fmt.Errorf("envelope: decode body: %w", err)
	}
	r := readers.Get().(*bytes.Reader)
	r.Reset(b)
	dec := msgpack.GetDecoder()
	dec.Reset(r)
	err := dec.Decode(v)
	msgpack.PutDecoder(dec)
	rest := r.Len()
	r.Reset(nil)
	readers.Put(r)
	if err != nil {
		return fmt.Errorf("envelope: decode body: %w", err)
	}
	if rest != 0 {
		return fmt.Errorf("envelope: decode body: %d trailing bytes", rest)
	}
	return nil
}

// EncodeError returns the body of an ERROR reply: the msgpack map
// {"code": code, "message": message}, keys in that order.
func EncodeError(code, message string) []byte {
	b := make([]byte, 0, 1+5+8+len(code)+len(message)+10)
	b = append(b, 0x82) // fixmap, 2 entries
	b = appendStr(b, "code")
	b = appendStr(b, code)
	b = appendStr(b, "message")
	b = appendStr(b, message)
	return b
}

// appendStr appends s as a msgpack str in its smallest form.
func appendStr(b []byte, s string) []byte {
	n := len(s)
	switch {
	case n < 32:
		b = append(b, 0xa0|byte(n))
	case n <= 0xff:
		b = append(b, 0xd9, byte(n))
	case n <= 0xffff:
		b = append(b, 0xda, byte(n>>8), byte(n))
	default:
		b = append(b, 0xdb, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, s...)
}

var errNoCode = errors.New(`no "code" key`)

// DecodeError decodes the body of an ERROR reply. The body must be one
// msgpack map with a string "code"; "message", if present, must be a
// string; other keys are ignored. Any other input is an error, never a
// panic.
func DecodeError(b []byte) (code, message string, err error) {
	r := bytes.NewReader(b)
	dec := msgpack.GetDecoder()
	dec.Reset(r)
	code, message, err = decodeError(dec)
	msgpack.PutDecoder(dec)
	if err == nil && r.Len() != 0 {
		err = fmt.Errorf("%d trailing bytes", r.Len())
	}
	if err != nil {
		return "", "", fmt.Errorf("envelope: decode error body: %w", err)
	}
	return code, message, nil
}

func decodeError(dec *msgpack.Decoder) (code, message string, err error) {
	n, err := dec.DecodeMapLen()
	if err != nil {
		return "", "", err
	}
	if n < 0 {
		return "", "", errors.New("nil, want a map")
	}
	hasCode := false
	for range n {
		key, err := dec.DecodeString()
		if err != nil {
			return "", "", err
		}
		switch key {
		case "code":
			code, err = dec.DecodeString()
			hasCode = true
		case "message":
			message, err = dec.DecodeString()
		default:
			err = dec.Skip()
		}
		if err != nil {
			return "", "", fmt.Errorf("key %q: %w", key, err)
		}
	}
	if !hasCode {
		return "", "", errNoCode
	}
	return code, message, nil
}

// checkBody walks the msgpack value in b without decoding it and reports
// an error unless b holds exactly one well-formed value whose every
// announced length fits in the bytes that remain. msgpack preallocates a
// map decoded into an interface (or a map[string]any) at the size its
// header announces, unbounded: without this check a 5-byte body announcing
// 2^32 entries makes a receiver allocate without limit.
func checkBody(b []byte) error {
	off, want := 0, 1 // want: values still to read; each takes at least one byte
	for want > 0 {
		if off >= len(b) {
			return fmt.Errorf("truncated: %d more values at offset %d", want, off)
		}
		c := b[off]
		off++
		want--
		var items, skip int // values inside a container; bytes of payload
		switch {
		case c <= 0x7f, c >= 0xe0, c == 0xc0, c == 0xc2, c == 0xc3:
		case c <= 0x8f: // fixmap
			items = 2 * int(c&0x0f)
		case c <= 0x9f: // fixarray
			items = int(c & 0x0f)
		case c <= 0xbf: // fixstr
			skip = int(c & 0x1f)
		default:
			n, size, ok := bodyLen(c, b[off:])
			if !ok {
				return fmt.Errorf("bad or truncated code %#x at offset %d", c, off-1)
			}
			off += size
			switch c {
			case 0xdc, 0xdd: // array16/32
				items = n
			case 0xde, 0xdf: // map16/32
				items = 2 * n
			default:
				skip = n
			}
		}
		if skip > len(b)-off {
			return fmt.Errorf("%d bytes announced at offset %d, %d remain", skip, off, len(b)-off)
		}
		off += skip
		want += items
		if want > len(b)-off {
			return fmt.Errorf("%d values announced at offset %d, %d bytes remain", want, off, len(b)-off)
		}
	}
	if off != len(b) {
		return fmt.Errorf("%d trailing bytes", len(b)-off)
	}
	return nil
}

// bodyLen decodes what follows msgpack code c (not a fix* code): for a
// container its element count, else the payload's byte count, and how many
// bytes of rest the length itself (and an ext's type byte) took.
func bodyLen(c byte, rest []byte) (n, size int, ok bool) {
	be := func(k int) (int, bool) {
		if len(rest) < k {
			return 0, false
		}
		v := 0
		for _, x := range rest[:k] {
			v = v<<8 | int(x)
		}
		return v, true
	}
	switch c {
	case 0xca, 0xcb, 0xcc, 0xcd, 0xce, 0xcf, 0xd0, 0xd1, 0xd2, 0xd3: // float32/64, uint8-64, int8-64
		return [...]int{4, 8, 1, 2, 4, 8, 1, 2, 4, 8}[c-0xca], 0, true
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1-16: type byte, then data
		return 1 + 1<<(c-0xd4), 0, true
	case 0xc4, 0xd9: // bin8, str8
		n, ok = be(1)
		return n, 1, ok
	case 0xc5, 0xda, 0xdc, 0xde: // bin16, str16, array16, map16
		n, ok = be(2)
		return n, 2, ok
	case 0xc6, 0xdb, 0xdd, 0xdf: // bin32, str32, array32, map32
		n, ok = be(4)
		return n, 4, ok
	case 0xc7, 0xc8, 0xc9: // ext8/16/32: length, type byte, data
		k := 1 << (c - 0xc7)
		n, ok = be(k)
		return n + 1, k, ok
	}
	return 0, 0, false // 0xc1 is never used
}
