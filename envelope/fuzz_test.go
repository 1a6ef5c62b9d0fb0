package envelope

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// Fuzz targets for every decoder of bytes that arrive from the network.
// Their seed corpora are the f.Add calls below and the files under
// testdata/fuzz/<target>; `make fuzz` runs each for a while.

func FuzzDecode(f *testing.F) {
	f.Add(mustEncode(f, sampleHeader()))
	f.Add(mustEncode(f, Header{Kind: KindCast}))
	f.Add(mustEncode(f, Header{Kind: KindReply, ID: NewMsgID(), Target: Target{Fanout: true}}))
	f.Add(mustEncode(f, Header{Kind: KindError, Method: strings.Repeat("m", 300), ReplyTo: []byte{0}}))
	f.Add(mustEncode(f, Header{Kind: KindCall, AckWanted: true, ReplyTo: []byte{1, 2}}))
	f.Add(mustEncode(f, Header{Kind: KindCast, AckWanted: true, Target: Target{Fanout: true, Topic: "t"}}))
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
		if h.Target.Fanout != (b[2]&flagFanout != 0) || h.AckWanted != (b[2]&flagAck != 0) {
			t.Fatalf("flags %#x decoded as fanout %v, ack %v", b[2], h.Target.Fanout, h.AckWanted)
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

// FuzzParseRouted: what a ROUTER (a node's poller, a router proxy)
// receives, [routing-id, payload] in any number of frames, read as the
// router proxy routes it: each record's kind, msg_id, flags, server and
// reply_to straight from the bytes, which must agree with the header the
// record decodes to.
func FuzzParseRouted(f *testing.F) {
	rec := sampleRecord(f)
	ack := Header{Kind: KindCall, AckWanted: true, ReplyTo: []byte{9}, Target: Target{Topic: "t", Server: "s0"}}
	f.Add([]byte{1, 2, 3}, rec, uint8(2))
	f.Add([]byte{0xaa}, ack.AppendRecord(bytes.Clone(rec), []byte{0xc0}), uint8(2))
	f.Add([]byte{}, []byte{}, uint8(2))
	f.Add([]byte{1}, rec[:10], uint8(2))
	f.Add([]byte{1}, rec, uint8(1))
	f.Add([]byte{1}, rec, uint8(3))
	f.Add([]byte{1}, append([]byte{1}, rec[1:]...), uint8(2)) // version 1

	f.Fuzz(func(t *testing.T, id, payload []byte, n uint8) {
		all := [][]byte{id, payload, []byte("extra")}
		frames := all[:int(n)%(len(all)+1)]
		gotID, gotPayload, err := ParseRouted(frames)
		if len(frames) != 2 {
			if !errors.Is(err, ErrFrames) {
				t.Fatalf("ParseRouted of %d frames: err = %v, want ErrFrames", len(frames), err)
			}
			return
		}
		if err != nil || !bytes.Equal(gotID, id) || !bytes.Equal(gotPayload, payload) {
			t.Fatalf("ParseRouted = %x, %x, %v; want the two frames", gotID, gotPayload, err)
		}
		_, _ = Records(gotPayload, func(v *View) bool {
			h := v.Header()
			if v.Kind() != h.Kind || v.ID() != h.ID || v.Fanout() != h.Target.Fanout || v.AckWanted() != h.AckWanted ||
				string(v.Server()) != h.Target.Server || !bytes.Equal(v.ReplyTo(), h.ReplyTo) {
				t.Fatalf("routing fields read from the bytes disagree with the header %+v", h)
			}
			return true
		})
	})
}

// FuzzDecodeBody: a CALL's or CAST's argument and a REPLY's result, decoded
// into a generic value and into typed ones as handlers do.
func FuzzDecodeBody(f *testing.F) {
	for _, v := range []any{nil, 5, -300000, "add", []byte{0, 1}, 3.5, true,
		map[string]any{"a": 1, "b": []any{"x", nil}}, []int{1, 2, 3}, addArgs{A: 1, Name: "n"}} {
		b, err := EncodeBody(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0xc1})
	f.Add([]byte{0x05, 0x06})
	f.Add([]byte{0xdf, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0xd6, 0xff, 0, 0, 0, 1}) // timestamp ext

	f.Fuzz(func(t *testing.T, b []byte) {
		var (
			n int64
			s string
			a addArgs
		)
		_ = DecodeBody(b, &n) // typed targets: must not panic
		_ = DecodeBody(b, &s)
		_ = DecodeBody(b, &a)
		var v any
		if err := DecodeBody(b, &v); err != nil {
			return
		}
		// Exactly one value: a trailing byte is an error.
		if err := DecodeBody(append(bytes.Clone(b), 0xc0), &v); err == nil {
			t.Fatalf("DecodeBody(% x + c0) accepted a trailing byte", b)
		}
		// What decodes re-encodes, and decodes to the same value again.
		re, err := EncodeBody(v)
		if err != nil {
			t.Fatalf("decoded %#v does not re-encode: %v", v, err)
		}
		var v2 any
		if err := DecodeBody(re, &v2); err != nil {
			t.Fatalf("re-encoded % x does not decode: %v", re, err)
		}
		re2, err := EncodeBody(v2)
		if err != nil {
			t.Fatal(err)
		}
		var v3 any
		if err := DecodeBody(re2, &v3); err != nil {
			t.Fatal(err)
		}
		// %#v prints map keys sorted and NaN as NaN.
		if a, b := fmt.Sprintf("%#v", v2), fmt.Sprintf("%#v", v3); a != b {
			t.Fatalf("re-encoding changed the value:\n%s\n%s", a, b)
		}
	})
}

func FuzzDecodeError(f *testing.F) {
	f.Add(EncodeError("NoSuchMethod", "no such method"))
	f.Add(EncodeError("BadRequest", strings.Repeat("m", 40)))
	f.Add(EncodeError("c", ""))
	f.Add([]byte{0x80})
	f.Add([]byte{0xc0})
	f.Add([]byte{0x81, 0xa4, 'c', 'o', 'd', 'e', 0x05})
	f.Fuzz(func(t *testing.T, b []byte) {
		code, message, err := DecodeError(b)
		if err != nil {
			if code != "" || message != "" {
				t.Fatalf("DecodeError returned %q/%q with error %v", code, message, err)
			}
			return
		}
		c2, m2, err := DecodeError(EncodeError(code, message))
		if err != nil || c2 != code || m2 != message {
			t.Fatalf("re-encoding %q/%q gave %q/%q, %v", code, message, c2, m2, err)
		}
		if _, _, err := DecodeError(append(bytes.Clone(b), 0)); err == nil {
			t.Fatalf("DecodeError(% x + 00) accepted a trailing byte", b)
		}
	})
}

// FuzzRecords: a payload of records (a batch, PROTOCOL.md §2) read as a
// receiver reads it never panics; the records passed before an error are
// exactly the bytes before the damage, each re-encoding to its own bytes
// (apart from ignored flag bits), and nothing after the damage is passed.
func FuzzRecords(f *testing.F) {
	rec := sampleRecord(f)
	f.Add(rec)
	f.Add(append(bytes.Clone(rec), rec...))
	f.Add(rec[:len(rec)-1])
	f.Add(append(bytes.Clone(rec), rec[:30]...))
	f.Add(append(append(bytes.Clone(rec), rec...), rec[:len(rec)-1]...))
	bad := bytes.Clone(rec)
	bad[1] = 0xee // an invalid kind in the middle of a batch
	f.Add(append(append(bytes.Clone(rec), bad...), rec...))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var re []byte
		passed, off := 0, 0
		n, err := Records(b, func(v *View) bool {
			h := v.Header()
			if err := h.Validate(); err != nil {
				t.Fatalf("read header does not validate: %v", err)
			}
			if r := v.Record(); len(r) == 0 || &r[0] != &b[off] {
				t.Fatalf("record %d does not start where the one before it ended (offset %d)", passed, off)
			}
			re = h.AppendRecord(re, v.Body())
			off += len(v.Record())
			passed++
			return true
		})
		if n != passed {
			t.Fatalf("Records reported %d records, passed %d", n, passed)
		}
		if err == nil && off != len(b) {
			t.Fatalf("no error, but %d of %d bytes were read", off, len(b))
		}
		if err != nil && off == len(b) && len(b) > 0 {
			t.Fatalf("error %v after every byte was read", err)
		}
		canon := bytes.Clone(b[:off])
		for o := 0; o < len(canon); {
			v, _, err := Next(canon[o:])
			if err != nil {
				t.Fatalf("second read failed: %v", err)
			}
			canon[o+2] &= knownFlags
			o += len(v.Record())
		}
		if !bytes.Equal(re, canon) {
			t.Fatalf("re-encoding differs:\n% x\n% x", re, canon)
		}
	})
}
