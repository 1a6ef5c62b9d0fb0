package proxy

import (
	"strings"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/relay-dev/relay/actors"
	"github.com/relay-dev/relay/curve"
	"github.com/relay-dev/relay/envelope"
	"github.com/relay-dev/relay/matchmaker"
)

// What nodes and proxies agree on: where proxies register and in what
// form, the HELLO of a server to a router proxy, and the subscription
// prefixes of published records (docs/PROTOCOL.md). Nodes (package relay)
// read them; the proxies of this package write them.

// exchange is the matchmaker exchange of relay's own registrations.
const exchange = "$relay"

var (
	// RoutersKey is where router proxies register, as "FRONT|BACK".
	RoutersKey = matchmaker.Key{Exchange: exchange, Topic: "routers"}
	// PublishersKey is where central publisher proxies register, as
	// "FRONT|BACK|ack" (or "noack").
	PublishersKey = matchmaker.Key{Exchange: exchange, Topic: "publishers"}
)

// LocalPublishersKey is where the local publisher proxy of host registers
// its republishing endpoint.
func LocalPublishersKey(host string) matchmaker.Key {
	return matchmaker.Key{Exchange: exchange, Topic: "local-publishers", Server: host}
}

// RouterMember is one registered router proxy: clients send to Front,
// servers connect to Back.
type RouterMember struct{ Front, Back string }

// ParseRouter reads a router proxy's registration, "FRONT|BACK"; with
// CURVE the member's key goes with each endpoint.
func ParseRouter(member string) (RouterMember, bool) {
	rest, k, keyed, err := curve.SplitMember(member)
	front, back, ok := strings.Cut(rest, "|")
	if err != nil || !ok || front == "" || back == "" {
		return RouterMember{}, false
	}
	if keyed {
		front, back = curve.WithKey(front, k), curve.WithKey(back, k)
	}
	return RouterMember{Front: front, Back: back}, true
}

// PublisherMember is one registered central publisher proxy: publishers
// send to Front, subscribers connect to Back; Ack says whether it
// acknowledges what it published.
type PublisherMember struct {
	Front, Back string
	Ack         bool
}

// ParsePublisher reads a central publisher proxy's registration,
// "FRONT|BACK|ack" (or "noack"); with CURVE the member's key goes with
// each endpoint.
func ParsePublisher(member string) (PublisherMember, bool) {
	rest, k, keyed, err := curve.SplitMember(member)
	parts := strings.Split(rest, "|")
	if err != nil || len(parts) != 3 {
		return PublisherMember{}, false
	}
	if keyed {
		parts[0], parts[1] = curve.WithKey(parts[0], k), curve.WithKey(parts[1], k)
	}
	return PublisherMember{Front: parts[0], Back: parts[1], Ack: parts[2] == "ack"}, true
}

// HelloEvery is how often a server node says HELLO to every router
// proxy's back; a router proxy forgets a server not heard for helloTTL.
const (
	HelloEvery = time.Second
	helloTTL   = 3 * HelloEvery
	// helloMethod is the method of a HELLO (kind HEARTBEAT).
	helloMethod = "hello"
)

// Hello is the HELLO record a server node sends to a router proxy's back:
// from is the routing id of its DEALERs, names the servers it hosts. It
// returns the record and its deadline (UnixNano).
func Hello(from []byte, names []string) (rec []byte, deadline int64) {
	body, _ := msgpack.Marshal(names)
	h := envelope.Header{Kind: envelope.KindHeartbeat, ID: envelope.NewMsgID(), Method: helloMethod,
		ReplyTo: from, Deadline: time.Now().Add(HelloEvery).UnixNano()}
	return h.AppendRecord(nil, body), h.Deadline
}

// FanoutPrefix is the subscription prefix of the fanouts to a topic; the
// zero byte that ends it keeps topic "foo" from matching "foobar".
func FanoutPrefix(exchange, topic string) string { return "F" + exchange + "/" + topic + "\x00" }

// NotifyPrefix is the subscription prefix of the notifications of a topic
// ("topic.priority") to one listener pool, whose member is "pool|endpoint".
func NotifyPrefix(topic, member string) string { return "N" + topic + "\x00" + member + "\x00" }

// prefix is the subscription prefix of a published record, from its
// header alone: FanoutPrefix or NotifyPrefix.
func prefix(v *envelope.View) ([]byte, bool) {
	switch v.Kind() {
	case envelope.KindFanout:
		p := append([]byte{'F'}, v.Exchange()...)
		p = append(append(p, '/'), v.Topic()...)
		return append(p, 0), true
	case envelope.KindNotify:
		p := append([]byte{'N'}, v.Topic()...)
		p = append(append(p, 0), v.Server()...)
		return append(p, 0), true
	}
	return nil, false
}

// ackRecord is a central publisher proxy's ACK of a published record.
func ackRecord(v *envelope.View) []byte {
	ack := envelope.Header{Kind: envelope.KindAck, ID: v.ID()}
	return ack.AppendRecord(nil, nil)
}

// nackRecord answers a record no subscriber of this proxy would receive.
func nackRecord(v *envelope.View) []byte {
	e := envelope.Header{Kind: envelope.KindError, ID: v.ID()}
	return e.AppendRecord(nil, envelope.EncodeError(actors.CodeNoSubscribers, "no subscriber of "+string(v.Topic())+" on this proxy"))
}

// noRouteRecord answers a request whose server the router proxy has no
// connection to.
func noRouteRecord(v *envelope.View) []byte {
	e := envelope.Header{Kind: envelope.KindError, ID: v.ID(), ReplyTo: v.ReplyTo()}
	return e.AppendRecord(nil, envelope.EncodeError(actors.CodeNoRoute, "router proxy has no connection to server "+string(v.Server())))
}
