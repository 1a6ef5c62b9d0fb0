package envelope_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/relay-dev/relay/envelope"
)

// dump prints a record one field per line: hex, then what it is.
func dump(rec []byte) {
	row := func(b []byte, what string) { fmt.Printf("%-34s %s\n", hex.EncodeToString(b), what) }
	row(rec[0:1], "version 2")
	row(rec[1:2], "kind "+envelope.Kind(rec[1]).String())
	row(rec[2:3], "flags")
	row(rec[3:4], "attempt")
	row(rec[4:20], "msg_id")
	row(rec[20:28], "deadline")
	off := 28
	for _, name := range []string{"exchange", "topic", "server", "namespace", "version", "method", "reply_to", "meta"} {
		n := int(binary.BigEndian.Uint16(rec[off:]))
		v := rec[off+2 : off+2+n]
		what := name + " (" + fmt.Sprint(n) + ")"
		if name != "reply_to" && name != "meta" {
			what = fmt.Sprintf("%s %q", name, v)
		}
		row(rec[off:off+2+n], what)
		off += 2 + n
	}
	n := int(binary.BigEndian.Uint32(rec[off:]))
	row(rec[off:off+4], "body length")
	row(rec[off+4:off+4+n], "body")
	fmt.Printf("%d bytes: %s\n", len(rec), hex.EncodeToString(rec))
}

// The worked example of docs/PROTOCOL.md: a CALL of method "add" on topic
// "compute" with argument 5, and the REPLY that answers it with 6.
func Example_call() {
	call := envelope.Header{
		Kind:    envelope.KindCall,
		ID:      envelope.MsgID{15: 0x01},
		Target:  envelope.Target{Topic: "compute"},
		Method:  "add",
		ReplyTo: bytes.Repeat([]byte{0xaa}, 16),
	}
	if err := call.Validate(); err != nil {
		panic(err)
	}
	body, _ := envelope.EncodeBody(5)
	fmt.Println("CALL record:")
	dump(call.AppendRecord(nil, body))

	reply := envelope.Header{Kind: envelope.KindReply, ID: call.ID}
	body, _ = envelope.EncodeBody(6)
	fmt.Println("REPLY record:")
	dump(reply.AppendRecord(nil, body))

	fmt.Println("ERROR body:", hex.EncodeToString(envelope.EncodeError("NoSuchMethod", "add")))

	// Output:
	// CALL record:
	// 02                                 version 2
	// 01                                 kind CALL
	// 00                                 flags
	// 00                                 attempt
	// 00000000000000000000000000000001   msg_id
	// 0000000000000000                   deadline
	// 0000                               exchange ""
	// 0007636f6d70757465                 topic "compute"
	// 0000                               server ""
	// 0000                               namespace ""
	// 0000                               version ""
	// 0003616464                         method "add"
	// 0010aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa reply_to (16)
	// 0000                               meta (0)
	// 00000001                           body length
	// 05                                 body
	// 75 bytes: 0201000000000000000000000000000000000001000000000000000000000007636f6d7075746500000000000000036164640010aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa00000000000105
	// REPLY record:
	// 02                                 version 2
	// 03                                 kind REPLY
	// 00                                 flags
	// 00                                 attempt
	// 00000000000000000000000000000001   msg_id
	// 0000000000000000                   deadline
	// 0000                               exchange ""
	// 0000                               topic ""
	// 0000                               server ""
	// 0000                               namespace ""
	// 0000                               version ""
	// 0000                               method ""
	// 0000                               reply_to (0)
	// 0000                               meta (0)
	// 00000001                           body length
	// 06                                 body
	// 49 bytes: 02030000000000000000000000000000000000010000000000000000000000000000000000000000000000000000000106
	// ERROR body: 82a4636f6465ac4e6f537563684d6574686f64a76d657373616765a3616464
}

// Reading a batch received on a ROUTER: [routing-id, payload], where the
// payload holds records back to back.
func ExampleRecords() {
	var payload []byte
	for i, method := range []string{"reset", "start"} {
		h := envelope.Header{Kind: envelope.KindCast, ID: envelope.MsgID{15: byte(i + 1)}, Target: envelope.Target{Topic: "compute"}, Method: method}
		body, _ := envelope.EncodeBody(map[string]int{"level": i})
		payload = h.AppendRecord(payload, body)
	}
	from, payload, err := envelope.ParseRouted([][]byte{[]byte("peer"), payload})
	if err != nil {
		panic(err)
	}
	_, err = envelope.Records(payload, func(v *envelope.View) bool {
		var args map[string]int
		if err := envelope.DecodeBody(v.Body(), &args); err != nil {
			panic(err)
		}
		fmt.Println(string(from), v.Kind(), v.ID(), string(v.Topic()), string(v.Method()), args["level"])
		return true
	})
	fmt.Println(err)

	// A record of protocol version 1 is refused:
	_, err = envelope.Decode([]byte{1, 1, 0, 0})
	fmt.Println(strings.Contains(err.Error(), "unsupported version"))
	// Output:
	// peer CAST 00000000000000000000000000000001 compute reset 0
	// peer CAST 00000000000000000000000000000002 compute start 1
	// <nil>
	// true
}
