package envelope

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"
)

type addArgs struct {
	A, B  int
	Name  string
	Items []string
	Extra map[string]float64
}

func TestBodyRoundTrip(t *testing.T) {
	in := addArgs{A: 5, B: -300000, Name: "é", Items: []string{"x", ""}, Extra: map[string]float64{"pi": 3.14}}
	b, err := EncodeBody(in)
	if err != nil {
		t.Fatal(err)
	}
	var out addArgs
	if err := DecodeBody(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.A != in.A || out.B != in.B || out.Name != in.Name || len(out.Items) != 2 || out.Extra["pi"] != 3.14 {
		t.Fatalf("round trip: %+v", out)
	}
}

func TestEncodeBodyForms(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want []byte
	}{
		{nil, []byte{0xc0}},
		{5, []byte{0x05}},
		{int64(-1), []byte{0xff}},
		{300, []byte{0xcd, 0x01, 0x2c}},
		{"add", []byte{0xa3, 'a', 'd', 'd'}},
	} {
		got, err := EncodeBody(tc.v)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, tc.want) {
			t.Fatalf("EncodeBody(%#v) = % x, want % x", tc.v, got, tc.want)
		}
	}
	if _, err := EncodeBody(make(chan int)); err == nil {
		t.Fatal("EncodeBody(chan) succeeded")
	}
}

func TestDecodeBodyErrors(t *testing.T) {
	var n int
	for _, b := range [][]byte{nil, {0xa3, 'a'}, {0x05, 0x06}, {0xc1}} {
		if err := DecodeBody(b, &n); err == nil || !strings.HasPrefix(err.Error(), "envelope: ") {
			t.Fatalf("DecodeBody(% x) = %v, want an envelope error", b, err)
		}
	}
	if err := DecodeBody([]byte{0x05}, n); err == nil {
		t.Fatal("DecodeBody into a non-pointer succeeded")
	}
}

func TestErrorBodyRoundTrip(t *testing.T) {
	for _, tc := range []struct{ code, message string }{
		{"NoSuchMethod", "no method add in namespace ns"},
		{"", ""},
		{"panic", strings.Repeat("m", 31)},
		{"panic", strings.Repeat("m", 32)},
		{"BadRequest", strings.Repeat("m", 255)},
		{strings.Repeat("c", 256), strings.Repeat("m", 65535)},
		{"c", strings.Repeat("m", 65536)},
	} {
		b := EncodeError(tc.code, tc.message)
		code, message, err := DecodeError(b)
		if err != nil || code != tc.code || message != tc.message {
			t.Fatalf("DecodeError(EncodeError(%d, %d bytes)) = %d, %d bytes, %v",
				len(tc.code), len(tc.message), len(code), len(message), err)
		}
		// Any msgpack decoder reads it as a plain map.
		var m map[string]string
		if err := DecodeBody(b, &m); err != nil || len(m) != 2 || m["code"] != tc.code || m["message"] != tc.message {
			t.Fatalf("msgpack reads the error body as %v, %v", len(m), err)
		}
	}
}

func TestDecodeErrorAcceptsOtherEncoders(t *testing.T) {
	b, err := EncodeBody(map[string]any{"message": "m", "extra": []int{1, 2}, "code": "X"})
	if err != nil {
		t.Fatal(err)
	}
	code, message, err := DecodeError(b)
	if err != nil || code != "X" || message != "m" {
		t.Fatalf("DecodeError = %q, %q, %v", code, message, err)
	}
}

func TestDecodeErrorGarbage(t *testing.T) {
	for _, b := range [][]byte{
		nil,
		{0x05},                                 // an int
		{0xc0},                                 // nil
		{0x80},                                 // empty map: no code
		{0x81, 0xa4, 'c', 'o', 'd', 'e', 0x05}, // code not a string
		{0x81, 0x05, 0xa1, 'x'},                // key not a string
		{0x82, 0xa4, 'c', 'o', 'd', 'e'},       // truncated
		{0x81, 0xa7, 'm', 'e', 's', 's', 'a', 'g', 'e', 0xa1, 'x'},     // no code
		append(EncodeError("a", "b"), 0x00),                            // trailing byte
		{0xdf, 0xff, 0xff, 0xff, 0xff},                                 // huge map, no entries
		{0x81, 0xa4, 'c', 'o', 'd', 'e', 0xdb, 0xff, 0xff, 0xff, 0xff}, // huge string
	} {
		if code, message, err := DecodeError(b); err == nil {
			t.Fatalf("DecodeError(% x) = %q, %q, nil; want an error", b, code, message)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		b := make([]byte, r.IntN(40))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		_, _, _ = DecodeError(b) // must not panic
	}
}

// A body that announces more values or bytes than it holds is an error
// before anything is allocated for them: msgpack alone would size a map
// decoded into an interface by its header (2^32 entries for 5 bytes).
func TestDecodeBodyAnnouncedLengths(t *testing.T) {
	for _, b := range [][]byte{
		{0xdf, 0xff, 0xff, 0xff, 0xff},             // map32 of 2^32-1 pairs
		{0xde, 0xff, 0xff},                         // map16
		{0xdd, 0xff, 0xff, 0xff, 0xff},             // array32
		{0x91, 0xdf, 0x00, 0x10, 0x00, 0x00, 0xc0}, // nested map32
		{0x82, 0xa1, 'a', 0xc0},                    // fixmap of 2 pairs, 1 present
		{0xdb, 0xff, 0xff, 0xff, 0xff},             // str32
		{0xc6, 0x00, 0x01, 0x00, 0x00},             // bin32
		{0xc9, 0xff, 0xff, 0xff, 0xff, 0x01},       // ext32
		{0xd8, 0x01, 0x00},                         // fixext16, short
		{0xcb, 0x00},                               // float64, short
	} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		var v any
		err := DecodeBody(b, &v)
		runtime.ReadMemStats(&after)
		if err == nil {
			t.Errorf("DecodeBody(% x) = %v, nil; want an error", b, v)
		}
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
			t.Errorf("DecodeBody(% x) allocated %d bytes", b, grew)
		}
		var m map[string]any
		if err := DecodeBody(b, &m); err == nil {
			t.Errorf("DecodeBody(% x) into a map = %v, nil; want an error", b, m)
		}
	}
	// Every kind of value, nested, still decodes.
	in := map[string]any{"a": []any{int64(-1), uint64(1 << 40), 1.5, float32(2), "s", []byte{1}, nil, true,
		map[string]any{"t": time.Unix(1, 2).UTC()}}, strings.Repeat("k", 40): strings.Repeat("v", 300)}
	b, err := EncodeBody(in)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := DecodeBody(b, &out); err != nil {
		t.Fatalf("DecodeBody of a valid nested value: %v", err)
	}
	if fmt.Sprint(out) != fmt.Sprint(in) {
		t.Fatalf("round trip:\n%v\n%v", out, in)
	}
}
