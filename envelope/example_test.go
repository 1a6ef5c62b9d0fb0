package envelope_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/relay-dev/relay/envelope"
)

// dump prints a header frame one field per line: hex, then what it is.
func dump(frame []byte) {
	row := func(b []byte, what string) { fmt.Printf("%-34s %s\n", hex.EncodeToString(b), what) }
	row(frame[0:1], "version 1")
	row(frame[1:2], "kind "+envelope.Kind(frame[1]).String())
	row(frame[2:3], "flags")
	row(frame[3:4], "reserved")
	row(frame[4:20], "msg_id")
	row(frame[20:28], "deadline")
	off := 28
	for _, name := range []string{"exchange", "topic", "server", "namespace", "version", "method", "reply_to"} {
		n := int(binary.BigEndian.Uint16(frame[off:]))
		v := frame[off+2 : off+2+n]
		what := name + " (" + fmt.Sprint(n) + ")"
		if name != "reply_to" {
			what = fmt.Sprintf("%s %q", name, v)
		}
		row(frame[off:off+2+n], what)
		off += 2 + n
	}
	fmt.Printf("%d bytes: %s\n", len(frame), hex.EncodeToString(frame))
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
	frame, err := call.Encode()
	if err != nil {
		panic(err)
	}
	body, _ := envelope.EncodeBody(5)
	fmt.Println("CALL header frame:")
	dump(frame)
	fmt.Println("CALL body frame:", hex.EncodeToString(body))

	reply := envelope.Header{Kind: envelope.KindReply, ID: call.ID}
	frame, _ = reply.Encode()
	body, _ = envelope.EncodeBody(6)
	fmt.Println("REPLY header frame:")
	dump(frame)
	fmt.Println("REPLY body frame:", hex.EncodeToString(body))

	fmt.Println("ERROR body frame:", hex.EncodeToString(envelope.EncodeError("NoSuchMethod", "add")))

	// Output:
	// CALL header frame:
	// 01                                 version 1
	// 01                                 kind CALL
	// 00                                 flags
	// 00                                 reserved
	// 00000000000000000000000000000001   msg_id
	// 0000000000000000                   deadline
	// 0000                               exchange ""
	// 0007636f6d70757465                 topic "compute"
	// 0000                               server ""
	// 0000                               namespace ""
	// 0000                               version ""
	// 0003616464                         method "add"
	// 0010aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa reply_to (16)
	// 68 bytes: 0101000000000000000000000000000000000001000000000000000000000007636f6d7075746500000000000000036164640010aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
	// CALL body frame: 05
	// REPLY header frame:
	// 01                                 version 1
	// 03                                 kind REPLY
	// 00                                 flags
	// 00                                 reserved
	// 00000000000000000000000000000001   msg_id
	// 0000000000000000                   deadline
	// 0000                               exchange ""
	// 0000                               topic ""
	// 0000                               server ""
	// 0000                               namespace ""
	// 0000                               version ""
	// 0000                               method ""
	// 0000                               reply_to (0)
	// 42 bytes: 010300000000000000000000000000000000000100000000000000000000000000000000000000000000
	// REPLY body frame: 06
	// ERROR body frame: 82a4636f6465ac4e6f537563684d6574686f64a76d657373616765a3616464
}

// Decoding a message received on a ROUTER.
func ExampleParseRouted() {
	h := envelope.Header{Kind: envelope.KindCast, ID: envelope.MsgID{15: 7}, Target: envelope.Target{Topic: "compute"}, Method: "reset"}
	frame, _ := h.Encode()
	body, _ := envelope.EncodeBody(map[string]int{"level": 2})

	from, got, b, err := envelope.ParseRouted([][]byte{[]byte("peer"), frame, body})
	if err != nil {
		panic(err)
	}
	var args map[string]int
	if err := envelope.DecodeBody(b, &args); err != nil {
		panic(err)
	}
	fmt.Println(string(from), got.Kind, got.ID, got.Target.Topic, got.Method, args["level"])

	// A frame from a future protocol version is refused:
	_, err = envelope.Decode([]byte{2, 1, 0, 0})
	fmt.Println(strings.Contains(err.Error(), "unsupported version"))
	// Output:
	// peer CAST 00000000000000000000000000000007 compute reset 2
	// true
}
