package relay

import (
	"bytes"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// FuzzNotifyBody: the body of a NOTIFY, as a listener's node decodes it.
// Whatever decodes re-encodes to the same notification. Seeds: below and
// testdata/fuzz/FuzzNotifyBody.
func FuzzNotifyBody(f *testing.F) {
	for _, b := range []notifyBody{
		{PublisherID: "compute.host1", Priority: "info", Timestamp: 1, Payload: msgpack.RawMessage{0xc0}},
		{Priority: "audit", Timestamp: -1, Payload: msgpack.RawMessage{0x82, 0xa1, 'a', 0x01, 0xa1, 'b', 0x90}},
		{},
	} {
		enc, err := msgpack.Marshal(&b)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc)
	}
	f.Add([]byte{0xc1})
	f.Add([]byte{0x05})
	f.Add([]byte{0x81, 0xa7, 'p', 'a', 'y', 'l', 'o', 'a', 'd', 0xdf, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		body, err := decodeNotifyBody(b)
		if err != nil {
			return
		}
		enc, err := msgpack.Marshal(&body)
		if err != nil {
			t.Fatalf("decoded %+v does not re-encode: %v", body, err)
		}
		again, err := decodeNotifyBody(enc)
		if err != nil {
			t.Fatalf("re-encoded % x does not decode: %v", enc, err)
		}
		if again.PublisherID != body.PublisherID || again.Priority != body.Priority ||
			again.Timestamp != body.Timestamp || !bytes.Equal(again.Payload, body.Payload) {
			t.Fatalf("re-encoding changed the notification:\n%+v\n%+v", body, again)
		}
	})
}
