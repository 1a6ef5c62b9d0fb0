package envelope

import (
	"bytes"
	"testing"
)

func TestStamp(t *testing.T) {
	var key [32]byte
	for i := range key {
		key[i] = byte(i + 1)
	}
	id := []byte{0, 0x12, 0x34, 0x56, 0x78}
	srv := []byte{0, 0x9a, 0xbc, 0xde, 0xf0}
	for _, caller := range []*[32]byte{nil, &key} {
		s := AppendStamp(nil, id, srv, caller)
		from, to, c, err := ParseStamp(s)
		if err != nil || !bytes.Equal(from, id) || !bytes.Equal(to, srv) || (caller == nil) != (c == nil) || (caller != nil && !bytes.Equal(c, key[:])) {
			t.Fatalf("ParseStamp(AppendStamp(%x, %x, %v)) = %x, %x, %x, %v", id, srv, caller != nil, from, to, c, err)
		}
	}
	for _, bad := range [][]byte{nil, {0}, {1, 1, 1, 1, 1}, {0, 0}, {0, 3, 1, 2}, {0, 1, 1}, {0, 1, 1, 0},
		append(AppendStamp(nil, id, srv, nil), 9), []byte("client-node-id!!")} {
		if _, _, _, err := ParseStamp(bad); err == nil {
			t.Errorf("ParseStamp(%x) accepted", bad)
		}
	}
}

func TestAppendWithReplyTo(t *testing.T) {
	h := Header{Kind: KindCall, ID: NewMsgID(), Deadline: 42, Target: Target{Topic: "compute", Server: "alpha"},
		Method: "add", ReplyTo: []byte("client-node-id!!"), Meta: AppendMeta(nil, map[string]string{"k": "v"})}
	rec := h.AppendRecord(nil, []byte{0x05})
	v, _, err := Next(rec)
	if err != nil {
		t.Fatal(err)
	}
	stamp := AppendStamp(nil, []byte{0, 1, 2, 3, 4}, []byte{0, 5, 6, 7, 8}, nil)
	out := v.AppendWithReplyTo([]byte("prefix"), stamp)
	if string(out[:6]) != "prefix" {
		t.Fatal("prefix lost")
	}
	w, rest, err := Next(out[6:])
	if err != nil || len(rest) != 0 {
		t.Fatalf("rewritten record: %v, %d bytes left", err, len(rest))
	}
	got := w.Header()
	want := h
	want.ReplyTo = stamp
	if got.ID != want.ID || got.Method != "add" || got.Target != want.Target || !bytes.Equal(got.ReplyTo, stamp) ||
		!bytes.Equal(got.Meta, h.Meta) || got.Deadline != 42 || !bytes.Equal(w.Body(), []byte{0x05}) {
		t.Fatalf("rewritten header %+v, want %+v", got, want)
	}
}
