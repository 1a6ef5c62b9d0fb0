package envelope

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/vmihailenco/msgpack/v5"
)

// AppendMeta appends the meta field's encoding of m to b: a msgpack map of
// string keys to string values, keys in sorted order. An empty or nil m
// appends nothing (no metadata).
func AppendMeta(b []byte, m map[string]string) []byte {
	if len(m) == 0 {
		return b
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	n := len(keys)
	switch {
	case n < 16:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0xde, byte(n>>8), byte(n))
	default:
		b = append(b, 0xdf, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	for _, k := range keys {
		b = appendStr(b, k)
		b = appendStr(b, m[k])
	}
	return b
}

// DecodeMeta decodes a meta field: nil for an empty one, else a msgpack
// map whose keys and values must all be strings. Any other input is an
// error, never a panic.
func DecodeMeta(b []byte) (map[string]string, error) {
	if len(b) == 0 {
		return nil, nil
	}
	r := bytes.NewReader(b)
	dec := msgpack.GetDecoder()
	dec.Reset(r)
	defer msgpack.PutDecoder(dec)
	n, err := dec.DecodeMapLen()
	if err != nil {
		return nil, fmt.Errorf("envelope: decode meta: %w", err)
	}
	if n < 0 {
		return nil, fmt.Errorf("envelope: decode meta: nil, want a map")
	}
	if n > len(b) {
		return nil, fmt.Errorf("envelope: decode meta: %d entries in %d bytes", n, len(b))
	}
	m := make(map[string]string, n)
	for range n {
		k, err := dec.DecodeString()
		if err != nil {
			return nil, fmt.Errorf("envelope: decode meta key: %w", err)
		}
		v, err := dec.DecodeString()
		if err != nil {
			return nil, fmt.Errorf("envelope: decode meta value of %q: %w", k, err)
		}
		m[k] = v
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("envelope: decode meta: %d trailing bytes", r.Len())
	}
	return m, nil
}
