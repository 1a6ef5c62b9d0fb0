package envelope

import (
	"bytes"
	"errors"
	"testing"
)

func TestParse(t *testing.T) {
	hdr := mustEncode(t, sampleHeader())
	body := []byte{0x05}

	h, b, err := Parse([][]byte{hdr, body})
	if err != nil {
		t.Fatal(err)
	}
	if !equalHeaders(h, sampleHeader()) {
		t.Fatalf("header %+v", h)
	}
	if &b[0] != &body[0] {
		t.Fatal("body does not alias frames[1]")
	}

	for _, frames := range [][][]byte{nil, {hdr}, {hdr, body, body}, {[]byte("id"), hdr, body}} {
		if _, _, err := Parse(frames); !errors.Is(err, ErrFrames) {
			t.Fatalf("Parse(%d frames): err = %v, want ErrFrames", len(frames), err)
		}
	}
	if _, _, err := Parse([][]byte{{2}, body}); !errors.Is(err, ErrVersion) {
		t.Fatalf("Parse with bad header: err = %v, want ErrVersion", err)
	}
}

func TestParseRouted(t *testing.T) {
	hdr := mustEncode(t, sampleHeader())
	rid := []byte{0, 1, 2, 3, 4}
	body := []byte{0xc0}

	id, h, b, err := ParseRouted([][]byte{rid, hdr, body})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(id, rid) || !bytes.Equal(b, body) || !equalHeaders(h, sampleHeader()) {
		t.Fatalf("ParseRouted = %x, %+v, %x", id, h, b)
	}

	for _, frames := range [][][]byte{nil, {hdr}, {hdr, body}, {rid, hdr, body, body}} {
		if _, _, _, err := ParseRouted(frames); !errors.Is(err, ErrFrames) {
			t.Fatalf("ParseRouted(%d frames): err = %v, want ErrFrames", len(frames), err)
		}
	}
	if _, _, _, err := ParseRouted([][]byte{rid, hdr[:10], body}); !errors.Is(err, ErrTruncated) {
		t.Fatalf("ParseRouted with short header: err = %v, want ErrTruncated", err)
	}
}
