package envelope

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"
)

// equalHeaders reports whether a and b are equal in every field, treating
// a nil and an empty ReplyTo or Meta as equal.
func equalHeaders(a, b Header) bool {
	return a.Kind == b.Kind && a.ID == b.ID && a.Deadline == b.Deadline &&
		a.Target == b.Target && a.Method == b.Method && bytes.Equal(a.ReplyTo, b.ReplyTo) &&
		a.AckWanted == b.AckWanted && a.Attempt == b.Attempt && bytes.Equal(a.Meta, b.Meta)
}

func sampleHeader() Header {
	return Header{
		Kind:     KindCall,
		ID:       MsgID{0: 0xde, 15: 0x01},
		Deadline: time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC).UnixNano(),
		Target: Target{
			Exchange:  "openstack",
			Topic:     "compute",
			Server:    "host1",
			Namespace: "ns",
			Version:   "1.2",
		},
		Method:    "add",
		ReplyTo:   bytes.Repeat([]byte{0xaa}, 16),
		AckWanted: true,
		Attempt:   3,
		Meta:      AppendMeta(nil, map[string]string{"trace": "t1"}),
	}
}

// setField sets field i (wire order) of h to v.
func setField(h *Header, i int, v string) {
	switch i {
	case 0:
		h.Target.Exchange = v
	case 1:
		h.Target.Topic = v
	case 2:
		h.Target.Server = v
	case 3:
		h.Target.Namespace = v
	case 4:
		h.Target.Version = v
	case 5:
		h.Method = v
	case 6:
		h.ReplyTo = []byte(v)
	case 7:
		h.Meta = []byte(v)
	}
}

func mustEncode(t testing.TB, h Header) []byte {
	t.Helper()
	b, err := h.Encode()
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	maxField := strings.Repeat("m", MaxFieldLen)
	values := []string{"", "x", "topic.with.dots-é", maxField}

	var cases []Header
	for k := KindCall; k <= KindCancel; k++ {
		for _, fanout := range []bool{false, true} {
			for _, deadline := range []int64{0, 1, -1, time.Now().UnixNano(), 1<<63 - 1} {
				for _, ack := range []bool{false, true} {
					base := sampleHeader()
					base.Kind, base.Target.Fanout, base.Deadline, base.AckWanted = k, fanout, deadline, ack
					base.Attempt = uint8(deadline)
					cases = append(cases, base)
				}
			}
			// Each field alone at every size, the others as in sampleHeader.
			for i := range numFields {
				for _, v := range values {
					h := sampleHeader()
					h.Kind, h.Target.Fanout = k, fanout
					setField(&h, i, v)
					cases = append(cases, h)
				}
			}
			// All fields empty, all fields at the maximum.
			for _, v := range []string{"", maxField} {
				h := Header{Kind: k, Target: Target{Fanout: fanout}}
				for i := range numFields {
					setField(&h, i, v)
				}
				cases = append(cases, h)
			}
		}
	}
	cases = append(cases, Header{Kind: KindCast}) // zero everything else

	for _, h := range cases {
		b := mustEncode(t, h)
		if len(b) != h.size() {
			t.Fatalf("encoded %d bytes, size() says %d", len(b), h.size())
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("Decode(%v %q): %v", h.Kind, b[:min(len(b), 64)], err)
		}
		if !equalHeaders(got, h) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, h)
		}
		if len(got.ReplyTo) == 0 && got.ReplyTo != nil {
			t.Fatalf("empty reply_to decoded as non-nil %v", got.ReplyTo)
		}
		if len(got.Meta) == 0 && got.Meta != nil {
			t.Fatalf("empty meta decoded as non-nil %v", got.Meta)
		}
	}
	if max := cases[len(cases)-2]; len(mustEncode(t, max)) != maxHeaderLen {
		t.Fatalf("all-max header is %d bytes, want maxHeaderLen %d", len(mustEncode(t, max)), maxHeaderLen)
	}
}

func TestLayout(t *testing.T) {
	h := sampleHeader()
	h.Kind = KindCast
	h.Target.Fanout = true
	b := mustEncode(t, h)

	if b[0] != Version || b[1] != byte(KindCast) || b[2] != 0x03 || b[3] != 3 {
		t.Fatalf("fixed bytes % x", b[:4])
	}
	if !bytes.Equal(b[4:20], h.ID[:]) {
		t.Fatalf("msg_id % x", b[4:20])
	}
	if got := int64(binary.BigEndian.Uint64(b[20:28])); got != h.Deadline {
		t.Fatalf("deadline %d, want %d", got, h.Deadline)
	}
	off := 28
	want := []string{"openstack", "compute", "host1", "ns", "1.2", "add", string(h.ReplyTo), string(h.Meta)}
	for i, w := range want {
		n := int(binary.BigEndian.Uint16(b[off:]))
		if got := string(b[off+2 : off+2+n]); got != w {
			t.Fatalf("field %s = %q, want %q", fieldNames[i], got, w)
		}
		off += 2 + n
	}
	if off != len(b) {
		t.Fatalf("%d bytes after the last field", len(b)-off)
	}
}

func TestAppendAppends(t *testing.T) {
	h := sampleHeader()
	prefix := []byte("prefix")
	b := h.Append(append([]byte(nil), prefix...))
	if !bytes.HasPrefix(b, prefix) {
		t.Fatalf("Append clobbered the prefix: %q", b[:6])
	}
	if !bytes.Equal(b[len(prefix):], mustEncode(t, h)) {
		t.Fatal("Append after a prefix differs from Encode")
	}
	// Reusing a buffer with room allocates nothing.
	buf := make([]byte, 0, 512)
	if allocs := testing.AllocsPerRun(100, func() { buf = h.Append(buf[:0]) }); allocs != 0 {
		t.Fatalf("Append into a buffer with room: %v allocs, want 0", allocs)
	}
}

func TestDecodeDoesNotAlias(t *testing.T) {
	h := sampleHeader()
	b := mustEncode(t, h)
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 0xff
	}
	if !equalHeaders(got, h) {
		t.Fatalf("decoded header changed with its input: %+v", got)
	}
}

func TestDecodeIgnoresUnknownFlags(t *testing.T) {
	for _, tc := range []struct {
		flags       byte
		fanout, ack bool
	}{
		{0x00, false, false}, {0x01, true, false}, {0x02, false, true}, {0xfc, false, false}, {0xfd, true, false}, {0xff, true, true},
	} {
		b := mustEncode(t, sampleHeader())
		b[2] = tc.flags
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("flags %#x: %v", tc.flags, err)
		}
		if got.Target.Fanout != tc.fanout || got.AckWanted != tc.ack {
			t.Fatalf("flags %#x: fanout %v ack %v, want %v %v", tc.flags, got.Target.Fanout, got.AckWanted, tc.fanout, tc.ack)
		}
		if re := got.Append(nil); re[2] != b[2]&knownFlags {
			t.Fatalf("re-encoded flags %#x, want %#x", re[2], b[2]&knownFlags)
		}
	}
}

func TestDecodeMalformed(t *testing.T) {
	valid := mustEncode(t, sampleHeader())
	with := func(f func(b []byte) []byte) []byte {
		return f(append([]byte(nil), valid...))
	}
	// Offset of the topic length: after the fixed part and the exchange.
	topicOff := fixedLen + 2 + len(sampleHeader().Target.Exchange)
	// A header whose fields are all empty: 28 + 8*2 bytes.
	empty := mustEncode(t, Header{Kind: KindCall})

	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"nil", nil, ErrTruncated},
		{"empty", []byte{}, ErrTruncated},
		{"one byte", []byte{Version}, ErrTruncated},
		{"one byte wrong version", []byte{3}, ErrVersion},
		{"version 0", with(func(b []byte) []byte { b[0] = 0; return b }), ErrVersion},
		{"version 1", with(func(b []byte) []byte { b[0] = 1; return b }), ErrVersion},
		{"version 3", with(func(b []byte) []byte { b[0] = 3; return b }), ErrVersion},
		{"version 1 short", []byte{1, 1, 0}, ErrVersion},
		{"fixed part short", valid[:fixedLen-1], ErrTruncated},
		{"no fields", valid[:fixedLen], ErrTruncated},
		{"kind 0", with(func(b []byte) []byte { b[1] = 0; return b }), ErrKind},
		{"kind 10", with(func(b []byte) []byte { b[1] = 10; return b }), ErrKind},
		{"kind 255", with(func(b []byte) []byte { b[1] = 255; return b }), ErrKind},
		{"kind checked before fields", []byte{Version, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, ErrKind},
		{"topic longer than remaining", with(func(b []byte) []byte {
			binary.BigEndian.PutUint16(b[topicOff:], uint16(len(b)-topicOff-2+1))
			return b
		}), ErrTruncated},
		{"topic length MaxFieldLen+1", with(func(b []byte) []byte {
			binary.BigEndian.PutUint16(b[topicOff:], MaxFieldLen+1)
			return b
		}), ErrFieldTooLong},
		{"topic length 0xffff", with(func(b []byte) []byte {
			binary.BigEndian.PutUint16(b[topicOff:], 0xffff)
			return b
		}), ErrFieldTooLong},
		{"meta length MaxFieldLen+1", with(func(b []byte) []byte {
			off := len(b) - len(sampleHeader().Meta) - 2
			binary.BigEndian.PutUint16(b[off:], MaxFieldLen+1)
			return b
		}), ErrFieldTooLong},
		{"meta longer than remaining", with(func(b []byte) []byte {
			off := len(b) - len(sampleHeader().Meta) - 2
			binary.BigEndian.PutUint16(b[off:], uint16(len(sampleHeader().Meta)+1))
			return b
		}), ErrTruncated},
		{"all-empty header missing last length byte", empty[:len(empty)-1], ErrTruncated},
		{"trailing byte", append(with(func(b []byte) []byte { return b }), 0), ErrTrailing},
		{"trailing bytes on all-empty", append(append([]byte(nil), empty...), 1, 2, 3), ErrTrailing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := Decode(tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Decode: err = %v, want %v", err, tt.want)
			}
			if !equalHeaders(h, Header{}) {
				t.Fatalf("Decode returned a non-zero header with an error: %+v", h)
			}
		})
	}
}

func TestDecodeErrorsNameFieldAndOffset(t *testing.T) {
	b := mustEncode(t, sampleHeader())
	topicOff := fixedLen + 2 + len("openstack")
	binary.BigEndian.PutUint16(b[topicOff:], MaxFieldLen+1)
	_, err := Decode(b)
	if msg := err.Error(); !strings.Contains(msg, "topic") || !strings.Contains(msg, "offset 39") {
		t.Fatalf("error %q does not name the field and offset", msg)
	}
}

func TestDecodeEveryPrefixTruncated(t *testing.T) {
	for _, h := range []Header{sampleHeader(), {Kind: KindReply}} {
		b := mustEncode(t, h)
		for n := range len(b) {
			if _, err := Decode(b[:n]); !errors.Is(err, ErrTruncated) {
				t.Fatalf("Decode of %d of %d bytes: err = %v, want ErrTruncated", n, len(b), err)
			}
		}
	}
}

func TestValidate(t *testing.T) {
	if err := (&Header{Kind: KindCall}).Validate(); err != nil {
		t.Fatalf("minimal header: %v", err)
	}
	for _, k := range []Kind{0, 10, 255} {
		h := sampleHeader()
		h.Kind = k
		if err := h.Validate(); !errors.Is(err, ErrKind) {
			t.Fatalf("kind %d: err = %v, want ErrKind", k, err)
		}
		if _, err := h.Encode(); !errors.Is(err, ErrKind) {
			t.Fatalf("Encode kind %d: err = %v, want ErrKind", k, err)
		}
	}
	for i, name := range fieldNames {
		h := sampleHeader()
		setField(&h, i, strings.Repeat("x", MaxFieldLen))
		if err := h.Validate(); err != nil {
			t.Fatalf("%s at MaxFieldLen: %v", name, err)
		}
		setField(&h, i, strings.Repeat("x", MaxFieldLen+1))
		err := h.Validate()
		if !errors.Is(err, ErrFieldTooLong) {
			t.Fatalf("%s too long: err = %v, want ErrFieldTooLong", name, err)
		}
		if !strings.Contains(err.Error(), name) {
			t.Fatalf("error %q does not name field %s", err, name)
		}
		if b, err := h.Encode(); !errors.Is(err, ErrFieldTooLong) || b != nil {
			t.Fatalf("Encode with %s too long: %v, %d bytes", name, err, len(b))
		}
	}
}

func TestDeadlineTime(t *testing.T) {
	if d := (&Header{}).DeadlineTime(); !d.IsZero() {
		t.Fatalf("no deadline: %v, want zero Time", d)
	}
	now := time.Now()
	h := Header{Deadline: now.UnixNano()}
	if d := h.DeadlineTime(); !d.Equal(now) {
		t.Fatalf("DeadlineTime = %v, want %v", d, now)
	}
}

func TestKind(t *testing.T) {
	want := map[Kind]string{
		KindCall: "CALL", KindCast: "CAST", KindReply: "REPLY", KindError: "ERROR",
		KindFanout: "FANOUT", KindNotify: "NOTIFY", KindAck: "ACK", KindHeartbeat: "HEARTBEAT", KindCancel: "CANCEL",
	}
	for k := range 256 {
		k := Kind(k)
		name, ok := want[k]
		if k.Valid() != ok {
			t.Fatalf("Kind(%d).Valid() = %v", k, k.Valid())
		}
		if !ok {
			name = "KIND(" + itoa(int(k)) + ")"
		}
		if got := k.String(); got != name {
			t.Fatalf("Kind(%d).String() = %q, want %q", k, got, name)
		}
	}
	if got := Kind(10).String(); got != "KIND(10)" {
		t.Fatalf("Kind(10) = %q", got)
	}
}

func itoa(n int) string {
	var b []byte
	for {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
		if n == 0 {
			return string(b)
		}
	}
}
