package envelope

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

func sampleRecord(t testing.TB) []byte {
	h := sampleHeader()
	return h.AppendRecord(nil, []byte{0x05})
}

func TestRecordRoundTrip(t *testing.T) {
	h := sampleHeader()
	var frame []byte
	bodies := [][]byte{{0x05}, nil, bytes.Repeat([]byte{7}, 70000)}
	for i, body := range bodies {
		h.Kind = Kind(i + 1)
		frame = h.AppendRecord(frame, body)
	}
	var got []Header
	var gotBodies [][]byte
	n, err := Records(frame, func(v *View) bool {
		got = append(got, v.Header())
		gotBodies = append(gotBodies, v.Body())
		if !bytes.Equal(v.Record()[:v.HeaderLen()], func() []byte { hh := v.Header(); return hh.Append(nil) }()) {
			t.Fatal("Record()[:HeaderLen()] is not the header's encoding")
		}
		return true
	})
	if err != nil || n != len(bodies) {
		t.Fatalf("Records: %d, %v", n, err)
	}
	for i := range bodies {
		want := h
		want.Kind = Kind(i + 1)
		if !equalHeaders(got[i], want) || !bytes.Equal(gotBodies[i], bodies[i]) {
			t.Fatalf("record %d: %+v %d bytes", i, got[i], len(gotBodies[i]))
		}
	}
}

func TestBeginEndRecord(t *testing.T) {
	h := sampleHeader()
	b, mark := h.BeginRecord([]byte("x"))
	b = append(b, "body"...)
	b = EndRecord(b, mark)
	v, rest, err := Next(b[1:])
	if err != nil || len(rest) != 0 || string(v.Body()) != "body" {
		t.Fatalf("Next = %q, %q, %v", v.Body(), rest, err)
	}
}

func TestViewFieldsAllocateNothing(t *testing.T) {
	rec := sampleRecord(t)
	id := sampleHeader().ID
	allocs := testing.AllocsPerRun(100, func() {
		v, _, err := Next(rec)
		if err != nil || v.Kind() != KindCall || string(v.Topic()) != "compute" || string(v.Method()) != "add" ||
			v.ID() != id || !v.AckWanted() || v.Attempt() != 3 {
			t.Fatal("view fields wrong")
		}
	})
	if allocs != 0 {
		t.Fatalf("reading a view: %v allocs, want 0", allocs)
	}
}

func TestRecordsMalformed(t *testing.T) {
	rec := sampleRecord(t)
	two := append(append([]byte(nil), rec...), rec...)
	bodyLenAt := len(rec) - 1 - bodyLenSize
	long := append([]byte(nil), two...)
	binary.BigEndian.PutUint32(long[bodyLenAt:], 2) // first body claims one byte of the second record
	for _, tc := range []struct {
		name  string
		frame []byte
		read  int
		want  error
	}{
		{"empty payload", nil, 0, ErrTruncated},
		{"header only", rec[:bodyLenAt], 0, ErrTruncated},
		{"body length cut", rec[:bodyLenAt+2], 0, ErrTruncated},
		{"body cut", rec[:len(rec)-1], 0, ErrTruncated},
		{"second record cut", two[:len(two)-1], 1, ErrTruncated},
		{"second record version 1", append(append([]byte(nil), rec...), func() []byte { b := bytes.Clone(rec); b[0] = 1; return b }()...), 1, ErrVersion},
		{"body length runs into the next record", long, 1, ErrVersion},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := Records(tc.frame, func(*View) bool { return true })
			if n != tc.read || !errors.Is(err, tc.want) {
				t.Fatalf("Records = %d, %v; want %d, %v", n, err, tc.read, tc.want)
			}
		})
	}
}

func TestMetaRoundTrip(t *testing.T) {
	for _, m := range []map[string]string{nil, {"a": "1"}, {"traceparent": "00-x", "tenant": "", "": "e"}} {
		got, err := DecodeMeta(AppendMeta(nil, m))
		if err != nil || len(got) != len(m) {
			t.Fatalf("meta %v: %v, %v", m, got, err)
		}
		for k, v := range m {
			if got[k] != v {
				t.Fatalf("meta %v: %q = %q", m, k, got[k])
			}
		}
	}
	for _, bad := range [][]byte{{0xc0}, {0x81, 0x01, 0xa1, 'x'}, {0x81, 0xa1, 'x'}, {0x80, 0x00}, {0xdf, 0xff, 0xff, 0xff, 0xff}} {
		if _, err := DecodeMeta(bad); err == nil {
			t.Fatalf("DecodeMeta(% x): no error", bad)
		}
	}
}
