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
// the cause. Unlike msgpack.Unmarshal, it rejects trailing bytes.
func DecodeBody(b []byte, v any) error {
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
