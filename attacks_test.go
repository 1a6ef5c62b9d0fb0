package relay_test

// The attacks of issue 10, replayed: forged replies, a connection
// takeover, forged registrations, a forged HELLO at a router proxy, and a
// look at the bytes on the wire.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/relay-dev/relay"
	"github.com/relay-dev/relay/curve"
	"github.com/relay-dev/relay/envelope"
	"github.com/relay-dev/relay/internal/demo"
	"github.com/relay-dev/relay/internal/testredis"
	"github.com/relay-dev/relay/matchmaker"
	"github.com/relay-dev/relay/proxy"
	"github.com/relay-dev/relay/sockets"
)

// mustBody encodes v as a record body.
func mustBody(t testing.TB, v any) []byte {
	t.Helper()
	b, err := envelope.EncodeBody(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rawReply decodes the one record of a message a RawDealer received.
func rawReply(t testing.TB, frames [][]byte) (envelope.Header, []byte) {
	t.Helper()
	if len(frames) != 1 {
		t.Fatalf("%d frames", len(frames))
	}
	v, _, err := envelope.Next(frames[0])
	if err != nil {
		t.Fatal(err)
	}
	return v.Header(), append([]byte(nil), v.Body()...)
}

// slowResult is the outcome of a call of "slow".
type slowResult struct {
	s   string
	err error
}

// callSlow calls "slow" on target from n in a goroutine of its own.
func callSlow(t *testing.T, n *relay.Node, target relay.Target) <-chan slowResult {
	res := make(chan slowResult, 1)
	go func() {
		var s string
		err := n.Call(ctxTimeout(t, 5*time.Second), target, "slow", nil, &s)
		res <- slowResult{s, err}
	}()
	return res
}

// evilRouter is an attacker's own ROUTER, registered as the server of
// topic "evil": what reaches it (routing id, reply_to) goes to seen.
func evilRouter(t *testing.T, mm string) (out *sockets.Outbox, seen chan [2][]byte) {
	t.Helper()
	zctx, err := sockets.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { zctx.Close(5 * time.Second) })
	out = sockets.NewOutbox(16)
	seen = make(chan [2][]byte, 16)
	r, err := sockets.StartRouter(zctx, out, sockets.RouterConfig{
		Bind:    sockets.Bind{Host: "127.0.0.1", PortMin: 20000, PortMax: 29999},
		Options: sockets.DefaultOptions(),
		OnRecv: func(b sockets.Batch) bool {
			for {
				fs, ok := b.Next(nil)
				if !ok {
					return false
				}
				_, _ = envelope.Records(fs[1], func(v *envelope.View) bool {
					seen <- [2][]byte{append([]byte(nil), fs[0]...), append([]byte(nil), v.ReplyTo()...)}
					return true
				})
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	m, err := matchmaker.Open(mm)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if err := m.Register(context.Background(), matchmaker.Key{Topic: "evil"}, r.Endpoint(), time.Minute); err != nil {
		t.Fatal(err)
	}
	return out, seen
}

// Reply injection and connection takeover, without CURVE: an attacker
// that knows a victim's reply identity and the msg_id of its call (here
// it is handed the id, more than the unpredictable ids allow) can neither
// answer the call from another connection, nor make the server answer it,
// nor take over the victim's connection.
func TestForgedRepliesAreNotAccepted(t *testing.T) {
	mm := newMatchmaker(t)
	s := newNode(t, mm, "s0")
	ids := slowServer(t, s, "s0", 300*time.Millisecond)
	victim := newNode(t, mm, "victim")
	out, seen := evilRouter(t, mm)

	// The victim casts to the attacker's server once: the attacker learns
	// its connection and its reply identity.
	if err := victim.Cast(ctxTimeout(t, 5*time.Second), relay.Target{Topic: "evil"}, "hello", nil); err != nil {
		t.Fatal(err)
	}
	var victimAtX, victimReplyTo []byte
	select {
	case got := <-seen:
		victimAtX, victimReplyTo = got[0], got[1]
	case <-time.After(5 * time.Second):
		t.Fatal("the attacker saw nothing")
	}
	for round := range 3 {
		res := callSlow(t, victim, compute)
		id := parseID(t, <-ids)
		stray := victim.Stats().StrayReplies

		// 1. The attacker answers the call down the victim's connection
		// to the attacker's server.
		forged := envelope.Header{Kind: envelope.KindReply, ID: id}
		if err := out.TryPush(sockets.Message{To: victimAtX, Rec: forged.AppendRecord(nil, mustBody(t, "forged"))}); err != nil {
			t.Fatal(err)
		}
		// 2. The attacker asks the real server to answer it: a request
		// with the victim's msg_id and reply_to, from a connection that
		// presents the victim's reply identity as its routing id.
		atk, err := sockets.DialRaw(s.Endpoint(), sockets.RawDealerConfig{Identity: victimReplyTo})
		if err != nil {
			t.Fatal(err)
		}
		if err := atk.Send(forgedCall(id, "", "echo", victimReplyTo, mustBody(t, "forged"))); err != nil {
			t.Fatal(err)
		}
		m, err := atk.Recv(5 * time.Second)
		if err != nil {
			t.Fatalf("round %d: the server's answer to the forged request did not come back to its sender: %v", round, err)
		}
		if h, body := rawReply(t, m); h.ID != id || h.Kind != envelope.KindReply || !bytes.Contains(body, []byte("forged")) {
			t.Fatalf("the forger got %v %x", h.Kind, body)
		}
		// The takeover: the victim's calls go on while the impostor is
		// connected.
		for range 5 {
			if err := victim.Call(ctxTimeout(t, 2*time.Second), compute, "get", nil, nil); err != nil {
				t.Fatalf("round %d: the victim's call failed while an impostor presented its identity: %v", round, err)
			}
		}
		r := <-res
		atk.Close()
		if r.err != nil || r.s != "real" {
			t.Fatalf("round %d: the victim's call returned %q, %v; want the real reply", round, r.s, r.err)
		}
		waitFor(t, 5*time.Second, func() error {
			if victim.Stats().StrayReplies <= stray {
				return errors.New("the forged reply was not counted as stray")
			}
			return nil
		})
	}
	if late := victim.Stats().LateReplies; late != 0 {
		t.Errorf("%d late replies: a forged one reached the victim's pending table", late)
	}
}

// A router proxy with CURVE: a forged HELLO (from a key not on the
// proxy's allow-list, or from a plaintext peer) routes nothing to the
// forger; answers go back by the proxy's stamp, so a key holder that sends
// a request with a victim's msg_id gets the answer itself; the server sees
// the client's key through the proxy.
func TestRouterProxyAttacks(t *testing.T) {
	keys := newKeyring(t, "proxy", "r1", "client", "eve", "mallory")
	mm := newMatchmaker(t)
	allowAt := func(names ...string) *curve.AllowList {
		m := map[curve.Key]string{}
		for _, n := range names {
			m[keys.public(n)] = n
		}
		return curve.NewAllowList(m)
	}
	pk := keys.pairs["proxy"]
	router, err := proxy.StartRouter(context.Background(), proxy.WithMatchmaker(mm), proxy.WithRegistrationTTL(time.Minute),
		proxy.WithCurveKeys(pk, allowAt("r1", "client", "eve")))
	if err != nil {
		t.Fatal(err)
	}
	defer router.Close()
	front, back := proxyEndpoints(t, router.Endpoints())

	r1 := newNode(t, mm, "r1", relay.WithRouterProxy(true), keys.with(t, "r1", "proxy", "client", "eve"))
	ids := slowServer(t, r1, "r1", 300*time.Millisecond)
	client := newNode(t, mm, "client", relay.WithRouterProxy(true), keys.with(t, "client", "proxy"))
	get := func() (demo.State, error) {
		var st demo.State
		err := client.Call(ctxTimeout(t, 3*time.Second), directed("r1"), "get", nil, &st)
		return st, err
	}
	waitFor(t, 10*time.Second, func() error { _, err := get(); return err })

	// Forged HELLOs for r1: from an unlisted key, and in plaintext.
	mk := keys.pairs["mallory"]
	forgers := []*sockets.RawDealer{}
	for _, cfg := range []struct {
		addr string
		keys *curve.KeyPair
	}{{back, &mk}, {strings.Split(back, ";")[0], nil}} {
		d, err := sockets.DialRaw(cfg.addr, sockets.RawDealerConfig{Keys: cfg.keys})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		forgers = append(forgers, d)
	}
	hello := func() []byte {
		names, _ := msgpack.Marshal([]string{"r1"})
		h := envelope.Header{Kind: envelope.KindHeartbeat, ID: envelope.NewMsgID(), Method: "hello",
			ReplyTo: []byte("mallory-node-id!"), Deadline: time.Now().Add(time.Second).UnixNano()}
		return h.AppendRecord(nil, names)
	}
	before, _ := router.Refused()
	for i := range 20 {
		for _, f := range forgers {
			_ = f.Send(hello()) // queued; the handshake never completes
		}
		st, err := get()
		if err != nil || st.Host != "r1" {
			t.Fatalf("call %d to r1: %+v, %v", i, st, err)
		}
	}
	for i, f := range forgers {
		if m, err := f.Recv(100 * time.Millisecond); err == nil {
			t.Fatalf("forger %d received %q", i, m)
		}
	}
	waitFor(t, 5*time.Second, func() error {
		if n, _ := router.Refused(); n < before+2 {
			return fmt.Errorf("the proxy counted %d refused connections, want 2 more than %d", n, before)
		}
		return nil
	})

	// The server sees the client's key, as the proxy admitted it.
	var who map[string]string
	if err := client.Call(ctxTimeout(t, 3*time.Second), directed("r1"), "whoami", nil, &who); err != nil || who["name"] != "client" {
		t.Fatalf("whoami through the proxy: %v, %v", who, err)
	}

	// Eve, a key holder, sends a request with the victim's msg_id and a
	// reply_to of her choosing: the answer comes back to her.
	res := callSlow(t, client, directed("r1"))
	id := parseID(t, <-ids)
	ek := keys.pairs["eve"]
	eve, err := sockets.DialRaw(front, sockets.RawDealerConfig{Keys: &ek})
	if err != nil {
		t.Fatal(err)
	}
	defer eve.Close()
	if err := eve.Send(forgedCall(id, "r1", "whoami", []byte("client-reply-id!"), nil)); err != nil {
		t.Fatal(err)
	}
	m, err := eve.Recv(5 * time.Second)
	if err != nil {
		t.Fatalf("eve's answer did not come back to her: %v", err)
	}
	h, body := rawReply(t, m)
	var who2 map[string]string
	if err := msgpack.Unmarshal(body, &who2); h.ID != id || err != nil || who2["name"] != "eve" {
		t.Fatalf("eve got %v %v (%v); want the answer to her own request, as eve", h.Kind, who2, err)
	}
	if r := <-res; r.err != nil || r.s != "real" {
		t.Fatalf("the victim's call returned %q, %v", r.s, r.err)
	}
	if n := client.Stats().LateReplies + client.Stats().StrayReplies; n != 0 {
		t.Errorf("the victim received %d answers it did not wait for", n)
	}
}

// proxyEndpoints splits a router proxy's registration into its front and
// back, each with the proxy's key.
func proxyEndpoints(t testing.TB, member string) (front, back string) {
	t.Helper()
	rest, k, keyed, err := curve.SplitMember(member)
	f, b, ok := strings.Cut(rest, "|")
	if err != nil || !ok {
		t.Fatalf("registration %q", member)
	}
	if keyed {
		return curve.WithKey(f, k), curve.WithKey(b, k)
	}
	return f, b
}

// A forged registration in Redis receives no call: a second server with a
// key the client does not trust is skipped (counted, logged), and one that
// registers the real server's key without its secret fails the handshake
// (counted, logged); the client carries on with the real server.
func TestForgedRegistrationReceivesNoCall(t *testing.T) {
	rs := testredis.Start(t)
	mm := rs.URL()
	keys := newKeyring(t, "s0", "forger", "impostor", "client")
	s0 := newNode(t, mm, "s0", keys.with(t, "s0", "client"))
	serveWhoami(t, s0, "s0")
	forger := newNode(t, mm, "forger", keys.with(t, "forger", "client"))
	serveWhoami(t, forger, "forger")
	// The impostor holds its own key and registers its endpoint with the
	// real server's public key.
	impostor := newNode(t, mm, "impostor", keys.with(t, "impostor", "client"))
	ep := &demo.Endpoint{Host: "impostor"}
	srv, err := impostor.Serve(relay.Target{Topic: "decoy"})
	if err != nil {
		t.Fatal(err)
	}
	ep.Register(srv)
	m, err := matchmaker.Open(mm)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	forged := curve.WithKey(impostor.Endpoint(), keys.public("s0"))
	for _, k := range []matchmaker.Key{{Topic: "compute"}, {Topic: "compute", Server: "s0"}} {
		if err := m.Register(context.Background(), k, forged, time.Minute); err != nil {
			t.Fatal(err)
		}
	}

	logOpt, logs := logTo()
	client := newNode(t, mm, "client", keys.with(t, "client", "s0"), logOpt)
	refusedCalls := 0
	for i := range 40 {
		var st demo.State
		err := client.Call(ctxTimeout(t, 5*time.Second), compute, "get", nil, &st)
		switch {
		case err == nil && st.Host == "s0":
		case errors.Is(err, relay.ErrUnauthorized) && i < 20:
			refusedCalls++ // the impostor, before it is known to refuse
		default:
			t.Fatalf("call %d: %+v, %v", i, st, err)
		}
	}
	if refusedCalls > 2 {
		t.Errorf("%d calls refused: the client must move on after the impostor's first refusal", refusedCalls)
	}
	for _, d := range []struct {
		name string
		n    *relay.Node
	}{{"forger", forger}, {"impostor", impostor}} {
		if st := d.n.Stats(); st.Handlers+st.Queued != 0 || st.ExpiredRequests != 0 {
			t.Errorf("the %s saw requests: %+v", d.name, st)
		}
	}
	if st := ep.State(); st.Int != 0 {
		t.Error("the impostor ran a handler")
	}
	st := client.Stats()
	if st.Untrusted == 0 || st.Refused == 0 {
		t.Errorf("the client counted %d untrusted registrations and %d refusals; want both", st.Untrusted, st.Refused)
	}
	for _, want := range []string{"registration not used", keys.public("forger").String(), "connection refused", "did not prove the key"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the client's log does not say %q:\n%s", want, logs.String())
		}
	}
	waitFor(t, 5*time.Second, func() error {
		if impostor.Stats().Refused == 0 {
			return errors.New("the impostor did not count the failed handshake")
		}
		return nil
	})
}

// tap is a TCP relay that copies what crosses it, both ways: what an
// observer of the network sees.
type tap struct {
	ln  net.Listener
	wg  sync.WaitGroup
	mu  sync.Mutex
	buf bytes.Buffer
	cs  []net.Conn
}

func newTap(t *testing.T, target string) *tap {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tp := &tap{ln: ln}
	tp.wg.Add(1)
	go func() { // tracked by tp.wg
		defer tp.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", strings.TrimPrefix(target, "tcp://"))
			if err != nil {
				c.Close()
				continue
			}
			tp.mu.Lock()
			tp.cs = append(tp.cs, c, s)
			tp.mu.Unlock()
			for _, p := range [][2]net.Conn{{c, s}, {s, c}} {
				tp.wg.Add(1)
				go func(dst, src net.Conn) { // tracked by tp.wg
					defer tp.wg.Done()
					_, _ = io.Copy(dst, io.TeeReader(src, tp))
					dst.Close()
				}(p[0], p[1])
			}
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		tp.mu.Lock()
		for _, c := range tp.cs {
			c.Close()
		}
		tp.mu.Unlock()
		tp.wg.Wait()
	})
	return tp
}

func (tp *tap) Write(p []byte) (int, error) {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return tp.buf.Write(p)
}

func (tp *tap) seen() []byte {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return append([]byte(nil), tp.buf.Bytes()...)
}

// With CURVE, a call's payload is not on the wire in clear; without, it is
// (which shows the tap sees the traffic).
func TestWireIsEncrypted(t *testing.T) {
	const secret = "CONFIDENTIAL-PAYLOAD-7f3a9c"
	keys := newKeyring(t, "server", "client")
	for _, on := range []bool{true, false} {
		t.Run(fmt.Sprintf("curve=%v", on), func(t *testing.T) {
			var sopt, copt []relay.Option
			if on {
				sopt = []relay.Option{keys.with(t, "server", "client")}
				copt = []relay.Option{keys.with(t, "client", "server")}
			}
			server := newNode(t, newMatchmaker(t), "server", sopt...)
			serveWhoami(t, server, "server")
			tp := newTap(t, server.Endpoint())
			// The client finds the server at the tap.
			mm := newMatchmaker(t)
			m, err := matchmaker.Open(mm)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			member := "tcp://" + tp.ln.Addr().String()
			if on {
				member = curve.WithKey(member, keys.public("server"))
			}
			if err := m.Register(context.Background(), matchmaker.Key{Topic: "compute"}, member, time.Minute); err != nil {
				t.Fatal(err)
			}
			client := newNode(t, mm, "client", copt...)
			var echoed string
			if err := client.Call(ctxTimeout(t, 5*time.Second), compute, "echo", secret, &echoed); err != nil || echoed != secret {
				t.Fatalf("echo through the tap: %q, %v", echoed, err)
			}
			wire := tp.seen()
			if len(wire) < 100 {
				t.Fatalf("the tap saw %d bytes", len(wire))
			}
			if got := bytes.Count(wire, []byte(secret)); on && got != 0 {
				t.Fatalf("the payload crossed the wire in clear %d times with CURVE on", got)
			} else if !on && got != 2 {
				t.Fatalf("without CURVE the tap saw the payload %d times, want 2 (call and reply)", got)
			}
			if on && bytes.Contains(wire, []byte("compute")) {
				t.Fatal("the topic crossed the wire in clear with CURVE on")
			}
		})
	}
}
