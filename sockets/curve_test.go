package sockets

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"
	"go.uber.org/goleak"

	"github.com/relay-dev/relay/curve"
)

// Relay's own key derivation agrees with libzmq's.
func TestCurvePublicMatchesLibzmq(t *testing.T) {
	for range 20 {
		kp, err := curve.Generate()
		if err != nil {
			t.Fatal(err)
		}
		pub, err := zmq.AuthCurvePublic(kp.Secret.String())
		if err != nil {
			t.Fatal(err)
		}
		if pub != kp.Public.String() {
			t.Fatalf("public key %s, libzmq says %s", kp.Public, pub)
		}
	}
}

// recorder collects what a loop's callbacks report. Safe for concurrent use.
type recorder struct {
	mu      sync.Mutex
	got     [][][]byte // received messages' frames (copied)
	refused []string
	drops   []error
	denied  []string
}

func (r *recorder) recv(b Batch) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var fs [][]byte
	for {
		var ok bool
		if fs, ok = b.Next(fs); !ok {
			return
		}
		cp := make([][]byte, len(fs))
		for i, f := range fs {
			cp[i] = append([]byte(nil), f...)
		}
		r.got = append(r.got, cp)
	}
}

func (r *recorder) add(list *[]string, s string) {
	r.mu.Lock()
	*list = append(*list, s)
	r.mu.Unlock()
}

func (r *recorder) drop(err error) {
	r.mu.Lock()
	r.drops = append(r.drops, err)
	r.mu.Unlock()
}

func (r *recorder) snapshot() (got [][][]byte, refused []string, drops []error, denied []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][][]byte(nil), r.got...), append([]string(nil), r.refused...), append([]error(nil), r.drops...), append([]string(nil), r.denied...)
}

// curveRouter starts a CURVE router admitting allowed, with its recorder.
func curveRouter(t *testing.T, zctx *Context, server curve.KeyPair, domain string, allowed ...curve.Key) (*Router, *Outbox, *recorder) {
	t.Helper()
	rec := &recorder{}
	err := zctx.AddDomain(domain, Authorizer{
		Allow: func(k curve.Key) bool {
			for _, a := range allowed {
				if a == k {
					return true
				}
			}
			return false
		},
		OnDeny: func(k curve.Key, addr string) { rec.add(&rec.denied, k.String()+"@"+addr) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { zctx.RemoveDomain(domain) })
	o := DefaultOptions()
	o.Curve = &Curve{Keys: server, Domain: domain}
	out := NewOutbox(100)
	r, err := StartRouter(zctx, out, RouterConfig{
		Bind:      Bind{Host: "127.0.0.1", PortMin: 20000, PortMax: 29999},
		Options:   o,
		OnRecv:    func(b Batch) bool { rec.recv(b); return false },
		OnRefused: func(reason string) { rec.add(&rec.refused, reason) },
		OnFail:    func(err error) { t.Errorf("router failed: %v", err) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	return r, out, rec
}

// dealers starts a Dealers loop with keys (nil: plaintext).
func dealers(t *testing.T, zctx *Context, keys *curve.KeyPair) (*Peers, *recorder) {
	t.Helper()
	rec := &recorder{}
	o := DefaultOptions()
	if keys != nil {
		o.Curve = &Curve{Keys: *keys}
	}
	peers := NewPeers(100, 0)
	d, err := StartDealers(zctx, peers, DealersConfig{
		Options:   o,
		OnRecv:    func(_ string, b Batch) bool { rec.recv(b); return false },
		OnDrop:    func(_ string, _ *Message, err error) { rec.drop(err) },
		OnRefused: func(addr string, err error) { rec.add(&rec.refused, err.Error()) },
		OnFail:    func(err error) { t.Errorf("dealers failed: %v", err) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Stop)
	return peers, rec
}

func TestCurveAdmitsListedKeysOnly(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // after the loops and the context are closed
	zctx := newTestContext(t)
	server, _ := curve.Generate()
	good, _ := curve.Generate()
	stranger, _ := curve.Generate()
	impostor, _ := curve.Generate()
	r, out, srec := curveRouter(t, zctx, server, "test", good.Public)
	addr := curve.WithKey(r.Endpoint(), server.Public)

	// An allowed client gets through; the router sees its key as User-Id
	// and answers down the connection it came on.
	gp, grec := dealers(t, zctx, &good)
	if err := func() error { _, err := gp.TryPush(addr, Message{Rec: []byte("hello")}); return err }(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() error {
		got, _, _, _ := srec.snapshot()
		if len(got) == 0 {
			return errors.New("nothing received")
		}
		m := got[0]
		if len(m) != 3 || string(m[1]) != "hello" || string(m[2]) != good.Public.String() {
			return fmt.Errorf("router got %q, want [id hello %s]", m, good.Public)
		}
		return nil
	})
	got, _, _, _ := srec.snapshot()
	if err := out.TryPush(Message{To: got[0][0], Rec: []byte("reply")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() error {
		if got, _, _, _ := grec.snapshot(); len(got) != 1 || string(got[0][0]) != "reply" {
			return fmt.Errorf("client got %q", got)
		}
		return nil
	})

	cases := []struct {
		name       string
		keys       *curve.KeyPair
		addr       string
		client     string // in the client's refusal
		server     string // in the server's refusal ("": the server sees no handshake)
		denied     bool   // the ZAP handler refused the key
		connectErr bool   // refused before any connection
	}{
		{"unlisted key", &stranger, addr, "not on its allow-list", "not on the allow-list", true, false},
		{"plaintext client", nil, addr, "another security mechanism", "another security mechanism", false, false},
		{"wrong server key", &good, curve.WithKey(r.Endpoint(), impostor.Public), "did not prove the key", "another server key", false, false},
		{"endpoint without key", &good, r.Endpoint(), "has no CURVE key", "", false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, refusedBefore, _, deniedBefore := srec.snapshot()
			peers, crec := dealers(t, zctx, c.keys)
			start := time.Now()
			if err := func() error {
				_, err := peers.TryPush(c.addr, Message{Rec: []byte("let me in"), Deadline: time.Now().Add(10 * time.Second).UnixNano()})
				return err
			}(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 5*time.Second, func() error {
				_, _, drops, _ := crec.snapshot()
				if len(drops) == 0 {
					return errors.New("message not dropped")
				}
				if !errors.Is(drops[0], ErrUnauthorized) || !strings.Contains(drops[0].Error(), c.client) {
					return fmt.Errorf("dropped with %v, want ErrUnauthorized saying %q", drops[0], c.client)
				}
				return nil
			})
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("refusal took %v: it must not wait for the deadline", d)
			}
			_, crefused, _, _ := crec.snapshot()
			if !c.connectErr && len(crefused) == 0 {
				t.Error("client's OnRefused not called")
			}
			if c.server != "" {
				waitFor(t, 5*time.Second, func() error {
					_, refused, _, _ := srec.snapshot()
					for _, r := range refused[len(refusedBefore):] {
						if strings.Contains(r, c.server) {
							return nil
						}
					}
					return fmt.Errorf("server refusals %q, want one saying %q", refused[len(refusedBefore):], c.server)
				})
			}
			if _, _, _, denied := srec.snapshot(); (len(denied) > len(deniedBefore)) != c.denied {
				t.Errorf("ZAP denials %q (before: %d), want a denial: %v", denied, len(deniedBefore), c.denied)
			}
			if got, _, _, _ := srec.snapshot(); len(got) != 1 {
				t.Errorf("the router received %d messages, want only the allowed client's", len(got))
			}
		})
	}
}

// A second connection with the routing id of one that is connected is
// refused: it receives nothing sent to that id, and what it sends is not
// taken (ROUTER_HANDOVER off).
func TestRouterRefusesHandover(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // after the loops and the context are closed
	zctx := newTestContext(t)
	rec := &recorder{}
	out := NewOutbox(10)
	r, err := StartRouter(zctx, out, RouterConfig{
		Bind:    Bind{Host: "127.0.0.1", PortMin: 20000, PortMax: 29999},
		Options: DefaultOptions(),
		OnRecv:  func(b Batch) bool { rec.recv(b); return false },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	dealer := func() *zmq.Socket {
		s, err := zctx.z.NewSocket(zmq.DEALER)
		if err != nil {
			t.Fatal(err)
		}
		s.SetLinger(0)
		s.SetIdentity("victim")
		s.SetRcvtimeo(200 * time.Millisecond)
		if err := s.Connect(r.Endpoint()); err != nil {
			t.Fatal(err)
		}
		return s
	}
	victim := dealer()
	defer victim.Close()
	victim.SendBytes([]byte("v1"), 0)
	waitFor(t, 5*time.Second, func() error {
		if got, _, _, _ := rec.snapshot(); len(got) != 1 {
			return errors.New("victim's message not received")
		}
		return nil
	})
	thief := dealer()
	defer thief.Close()
	// The thief's handshake completes; then it tries to be heard.
	for range 5 {
		thief.SendBytes([]byte("thief"), zmq.DONTWAIT)
		if _, err := thief.RecvBytes(0); err == nil {
			t.Fatal("the thief received something")
		}
	}
	if err := out.TryPush(Message{To: []byte("victim"), Rec: []byte("for the victim")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() error {
		b, err := victim.RecvBytes(0)
		if err != nil || string(b) != "for the victim" {
			return fmt.Errorf("victim got %q, %v", b, err)
		}
		return nil
	})
	if b, err := thief.RecvBytes(0); err == nil {
		t.Fatalf("the thief received %q", b)
	}
	for _, m := range func() [][][]byte { g, _, _, _ := rec.snapshot(); return g }() {
		if string(m[1]) == "thief" {
			t.Fatal("the router took the thief's message")
		}
	}
}

// newTestContext returns a handle on the process's context, closed when
// the test and its cleanups (which stop the loops) are done.
func newTestContext(t testing.TB) *Context {
	t.Helper()
	zctx, err := NewContext()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := zctx.Close(5 * time.Second); err != nil {
			t.Error(err)
		}
	})
	return zctx
}

// waitFor calls f until it returns nil, failing the test with f's last
// error after timeout. (testutil imports the root package, which imports
// this one.)
func waitFor(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	wait := time.Millisecond
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not true after %v: %v", timeout, err)
		}
		time.Sleep(wait)
		wait = min(2*wait, 50*time.Millisecond)
	}
}
