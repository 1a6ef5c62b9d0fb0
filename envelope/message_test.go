package envelope

import (
	"bytes"
	"errors"
	"testing"
)

func TestPayload(t *testing.T) {
	rec := sampleRecord(t)
	p, err := Payload([][]byte{rec})
	if err != nil || &p[0] != &rec[0] {
		t.Fatalf("Payload = %x, %v", p, err)
	}
	for _, frames := range [][][]byte{nil, {rec, rec}, {[]byte("id"), rec, rec}} {
		if _, err := Payload(frames); !errors.Is(err, ErrFrames) {
			t.Fatalf("Payload(%d frames): err = %v, want ErrFrames", len(frames), err)
		}
	}
}

func TestParseRouted(t *testing.T) {
	rec := sampleRecord(t)
	rid := []byte{0, 1, 2, 3, 4}
	id, p, err := ParseRouted([][]byte{rid, rec})
	if err != nil || !bytes.Equal(id, rid) || !bytes.Equal(p, rec) {
		t.Fatalf("ParseRouted = %x, %x, %v", id, p, err)
	}
	for _, frames := range [][][]byte{nil, {rec}, {rid, rec, rec}} {
		if _, _, err := ParseRouted(frames); !errors.Is(err, ErrFrames) {
			t.Fatalf("ParseRouted(%d frames): err = %v, want ErrFrames", len(frames), err)
		}
	}
}
