package relay_test

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relay-dev/relay"
	"github.com/relay-dev/relay/curve"
	"github.com/relay-dev/relay/envelope"
	"github.com/relay-dev/relay/internal/demo"
	"github.com/relay-dev/relay/internal/testutil"
	"github.com/relay-dev/relay/matchmaker"
	"github.com/relay-dev/relay/proxy"
)

// keyring is a directory of key pairs, NAME.key and NAME.pub, as `node
// keygen` writes them.
type keyring struct {
	dir   string
	pairs map[string]curve.KeyPair
}

func newKeyring(t testing.TB, names ...string) *keyring {
	t.Helper()
	k := &keyring{dir: t.TempDir(), pairs: map[string]curve.KeyPair{}}
	for _, n := range names {
		kp, err := curve.Generate()
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := curve.WriteKeyPair(filepath.Join(k.dir, n), n, kp, false); err != nil {
			t.Fatal(err)
		}
		k.pairs[n] = kp
	}
	return k
}

// secret is the secret key file of name.
func (k *keyring) secret(name string) string { return filepath.Join(k.dir, name+".key") }

// public is the public key of name.
func (k *keyring) public(name string) curve.Key { return k.pairs[name].Public }

// allowDir returns a new directory holding the public certificates of
// names: an allow-list.
func (k *keyring) allowDir(t testing.TB, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		k.allowAdd(t, dir, n)
	}
	return dir
}

// allowAdd copies name's public certificate into the allow-list dir.
func (k *keyring) allowAdd(t testing.TB, dir, name string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(k.dir, name+".pub"))
	if err != nil {
		t.Fatal(err)
	}
	// Through a rename, as a deployment tool would: a reader never sees
	// half a file.
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name+".pub")); err != nil {
		t.Fatal(err)
	}
}

// with returns the option that gives a node name's keys and an allow-list
// of allowed.
func (k *keyring) with(t testing.TB, name string, allowed ...string) relay.Option {
	t.Helper()
	return relay.WithCurve(k.secret(name), k.allowDir(t, allowed...))
}

// logTo returns a logger option writing to a buffer the test reads.
func logTo() (relay.Option, *logBuffer) {
	b := &logBuffer{}
	return relay.WithLogger(slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))), b
}

// whoami is a method that answers who called it.
func whoami(_ context.Context, r *relay.Request) (any, error) {
	return map[string]string{"name": r.Caller.Name, "key": r.Caller.Key.String(), "peer": r.Caller.String()}, nil
}

// serveWhoami serves compute on n with the demo endpoint of host and whoami.
func serveWhoami(t testing.TB, n *relay.Node, host string) *demo.Endpoint {
	t.Helper()
	srv, err := n.Serve(compute)
	if err != nil {
		t.Fatal(err)
	}
	ep := &demo.Endpoint{Host: host}
	ep.Register(srv)
	srv.Handle("whoami", whoami)
	return ep
}

// Calls, casts, fanout and notifications work with CURVE on, a handler sees
// its caller's key and name, and a server's registration carries its key.
func TestCurveEndToEnd(t *testing.T) {
	keys := newKeyring(t, "s0", "client")
	mm := newMatchmaker(t)
	server := newNode(t, mm, "s0", keys.with(t, "s0", "client", "s0"))
	ep := serveWhoami(t, server, "s0")
	client := newNode(t, mm, "client", keys.with(t, "client", "s0", "client"))

	var got map[string]string
	if err := client.Call(ctxTimeout(t, 5*time.Second), compute, "whoami", nil, &got); err != nil {
		t.Fatal(err)
	}
	if got["name"] != "client" || got["key"] != keys.public("client").String() {
		t.Fatalf("the handler saw caller %v, want client %s", got, keys.public("client"))
	}
	var sum int64
	if err := client.Call(ctxTimeout(t, 5*time.Second), compute, "add", 2, &sum); err != nil || sum != 2 {
		t.Fatalf("add = %d, %v", sum, err)
	}
	if err := client.Cast(ctxTimeout(t, 5*time.Second), compute, "add", 3); err != nil {
		t.Fatal(err)
	}
	if err := client.Cast(ctxTimeout(t, 5*time.Second), relay.Target{Topic: "compute", Fanout: true}, "add", 5); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() error {
		if st := ep.State(); st.Int != 10 {
			return fmt.Errorf("counter %d, want 10 (2 + cast 3 + fanout 5)", st.Int)
		}
		return nil
	})
	got2 := make(chan string, 1)
	l, err := server.Listen([]string{"billing.info"}, "workers", func(_ context.Context, d *relay.Delivery) error {
		got2 <- d.EventType
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Stop()
	if err := client.Notify(ctxTimeout(t, 5*time.Second), relay.Notification{Topic: "billing", EventType: "paid"}); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-got2:
		if ev != "paid" {
			t.Fatalf("notification %q", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("notification not delivered")
	}
	m, err := matchmaker.Open(mm)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	members, err := m.Lookup(context.Background(), matchmaker.Key{Topic: "compute"})
	if err != nil || len(members) != 1 || members[0] != curve.WithKey(server.Endpoint(), keys.public("s0")) {
		t.Fatalf("registered %q, %v; want the endpoint with the server's key", members, err)
	}
	if server.PublicKey() != keys.public("s0") {
		t.Fatal("PublicKey is not the key file's")
	}
}

// A CURVE server and a client it should not admit refuse each other
// visibly: the client gets ErrUnauthorized long before its deadline, and
// both count and log the refusal.
func TestCurveRefusesVisibly(t *testing.T) {
	keys := newKeyring(t, "server", "good", "stranger")
	mm := newMatchmaker(t)
	serverLog, slog := logTo()
	server := newNode(t, mm, "server", keys.with(t, "server", "good"), serverLog)
	serveWhoami(t, server, "server")

	// The deadline is far; the refusal must come at once.
	call := func(client *relay.Node) (error, time.Duration) {
		start := time.Now()
		err := client.Call(ctxTimeout(t, 10*time.Second), compute, "get", nil, nil)
		return err, time.Since(start)
	}
	check := func(t *testing.T, err error, took time.Duration, says string) {
		t.Helper()
		if !errors.Is(err, relay.ErrUnauthorized) || !strings.Contains(err.Error(), says) {
			t.Fatalf("call = %v, want ErrUnauthorized saying %q", err, says)
		}
		if took > 3*time.Second {
			t.Fatalf("refused after %v: it must not wait for the deadline", took)
		}
	}
	serverRefused := func(t *testing.T, before uint64, says string) {
		t.Helper()
		waitFor(t, 5*time.Second, func() error {
			if server.Stats().Refused <= before || !strings.Contains(slog.String(), says) {
				return fmt.Errorf("server counted %d refusals (before %d); log:\n%s", server.Stats().Refused, before, slog.String())
			}
			return nil
		})
	}

	t.Run("unlisted key", func(t *testing.T) {
		before := server.Stats().Refused
		logOpt, clog := logTo()
		client := newNode(t, mm, "stranger", keys.with(t, "stranger", "server"), logOpt)
		err, took := call(client)
		check(t, err, took, "not on its allow-list")
		if client.Stats().Refused == 0 || !strings.Contains(clog.String(), "connection refused") {
			t.Errorf("client did not count or log the refusal: %+v\n%s", client.Stats(), clog.String())
		}
		serverRefused(t, before, "client refused: its CURVE key is not on the allow-list")
		if !strings.Contains(slog.String(), keys.public("stranger").String()) {
			t.Error("the server's log does not name the refused key")
		}
	})
	t.Run("client without keys", func(t *testing.T) {
		client := newNode(t, mm, "plain")
		err, took := call(client)
		check(t, err, took, "requires CURVE")
		if client.Stats().Untrusted == 0 {
			t.Error("client did not count the registration it refused")
		}
	})
	t.Run("plaintext handshake", func(t *testing.T) {
		// A client told the server's address without its key (a hosts
		// file of plaintext days) connects in plaintext: the server
		// refuses the handshake, both sides say why.
		hosts := filepath.Join(t.TempDir(), "hosts.json")
		addr := strings.TrimPrefix(server.Endpoint(), "tcp://")
		if err := os.WriteFile(hosts, []byte(`{"compute": ["`+addr+`"]}`), 0o644); err != nil {
			t.Fatal(err)
		}
		before := server.Stats().Refused
		client := newNode(t, "file://"+hosts, "plain-file")
		err, took := call(client)
		check(t, err, took, "another security mechanism")
		serverRefused(t, before, "another security mechanism")
	})
	t.Run("plaintext server", func(t *testing.T) {
		mm2 := newMatchmaker(t)
		plain := newNode(t, mm2, "plain-server")
		serveWhoami(t, plain, "plain-server")
		client := newNode(t, mm2, "good", keys.with(t, "good", "server"))
		err, took := call(client)
		check(t, err, took, "registered without a CURVE key")
		if client.Stats().Untrusted == 0 {
			t.Error("client did not count the registration it refused")
		}
	})
	t.Run("allowed", func(t *testing.T) {
		client := newNode(t, mm, "good", keys.with(t, "good", "server"))
		if err, _ := call(client); err != nil {
			t.Fatal(err)
		}
	})
}

// A key file that others may read is refused with the fix; the error
// holds no key.
func TestCurveKeyFilePermissions(t *testing.T) {
	keys := newKeyring(t, "n")
	if err := os.Chmod(keys.secret("n"), 0o640); err != nil {
		t.Fatal(err)
	}
	_, err := relay.Start(context.Background(), relay.WithMatchmaker(newMatchmaker(t)), keys.with(t, "n", "n"))
	if err == nil || !strings.Contains(err.Error(), "WithCurve") || !strings.Contains(err.Error(), "chmod 600 "+keys.secret("n")) ||
		strings.Contains(err.Error(), keys.pairs["n"].Secret.String()) {
		t.Fatalf("Start with a 0640 key file: %v", err)
	}
	_, err = relay.Start(context.Background(), relay.WithMatchmaker(newMatchmaker(t)), relay.WithCurve(keys.secret("n"), ""))
	if err == nil || !strings.Contains(err.Error(), "WithCurve") || !strings.Contains(err.Error(), "allow-list") {
		t.Fatalf("Start without an allow-list: %v", err)
	}
}

// Binding every address needs an address to advertise; with one, the node
// registers it.
func TestAdvertise(t *testing.T) {
	mm := newMatchmaker(t)
	_, err := relay.Start(context.Background(), relay.WithMatchmaker(mm), relay.WithBindAddress("0.0.0.0"))
	if err == nil || !strings.Contains(err.Error(), "WithBindAddress") || !strings.Contains(err.Error(), "WithAdvertise") {
		t.Fatalf("wildcard bind without advertise: %v", err)
	}
	_, err = proxy.StartRouter(context.Background(), proxy.WithMatchmaker(mm), proxy.WithBindAddress("0.0.0.0"))
	if err == nil || !strings.Contains(err.Error(), "Advertise") {
		t.Fatalf("proxy: wildcard bind without advertise: %v", err)
	}
	server := newNode(t, mm, "s0", relay.WithBindAddress("0.0.0.0"), relay.WithAdvertise("127.0.0.1"))
	serveWhoami(t, server, "s0")
	if !strings.HasPrefix(server.Endpoint(), "tcp://127.0.0.1:") {
		t.Fatalf("endpoint %s, want the advertised address", server.Endpoint())
	}
	client := newNode(t, mm, "client")
	if err := client.Call(ctxTimeout(t, 5*time.Second), compute, "get", nil, nil); err != nil {
		t.Fatal(err)
	}
}

// The allow-list is read again while traffic flows: a newly allowed key
// works without a restart, and a removed key's calls are refused (on its
// open connection too), while the others never fail.
func TestAllowListRotation(t *testing.T) {
	keys := newKeyring(t, "server", "a", "b")
	mm := newMatchmaker(t)
	allow := keys.allowDir(t, "a")
	server := newNode(t, mm, "server", relay.WithCurve(keys.secret("server"), allow))
	serveWhoami(t, server, "server")
	a := newNode(t, mm, "a", keys.with(t, "a", "server"))
	b := newNode(t, mm, "b", keys.with(t, "b", "server"))
	get := func(n *relay.Node) error {
		return n.Call(ctxTimeout(t, 2*time.Second), compute, "get", nil, nil)
	}
	if err := get(b); !errors.Is(err, relay.ErrUnauthorized) {
		t.Fatalf("b before rotation: %v, want ErrUnauthorized", err)
	}
	// a calls all along.
	var aCalls, aFailed atomic.Int64
	var lastErr atomic.Pointer[error]
	stop := make(chan struct{})
	done := make(chan struct{})
	var stopOnce sync.Once
	halt := func() { stopOnce.Do(func() { close(stop) }); <-done }
	t.Cleanup(halt) // a check that fails below must not leave a caller running
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := get(a); err != nil {
				aFailed.Add(1)
				lastErr.Store(&err)
			}
			aCalls.Add(1)
		}
	}()
	keys.allowAdd(t, allow, "b") // picked up by the poll, no restart
	waitFor(t, 10*time.Second, func() error { return get(b) })
	waitFor(t, 10*time.Second, func() error {
		if aCalls.Load() < 50 {
			return fmt.Errorf("a made %d calls", aCalls.Load())
		}
		return nil
	})
	halt()
	if n := aFailed.Load(); n > 0 {
		t.Fatalf("%d of a's %d calls failed while b was added; last: %v", n, aCalls.Load(), *lastErr.Load())
	}
	// Remove a, and reload at once (what SIGHUP does): its calls are
	// refused on the connection it has.
	if err := os.Remove(filepath.Join(allow, "a.pub")); err != nil {
		t.Fatal(err)
	}
	if err := server.ReloadAllowList(); err != nil {
		t.Fatal(err)
	}
	if err := get(a); !errors.Is(err, relay.ErrUnauthorized) {
		t.Fatalf("a after removal: %v, want ErrUnauthorized", err)
	}
	if err := get(b); err != nil {
		t.Fatalf("b after a's removal: %v", err)
	}
	// A new connection of a is refused at the handshake.
	a2 := newNode(t, mm, "a2", relay.WithCurve(keys.secret("a"), keys.allowDir(t, "server")))
	if err := get(a2); !errors.Is(err, relay.ErrUnauthorized) {
		t.Fatalf("a's new connection: %v, want ErrUnauthorized", err)
	}
	// A broken file keeps the list in use.
	if err := os.WriteFile(filepath.Join(allow, "junk.pub"), []byte("public-key = broken"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := server.ReloadAllowList(); err == nil {
		t.Fatal("a broken allow-list reloaded without error")
	}
	if err := get(b); err != nil {
		t.Fatalf("b after a broken reload: %v", err)
	}
}

// The node's log names no secret of its matchmaker URL.
func TestLogsRedactMatchmakerURL(t *testing.T) {
	mm := newMatchmaker(t) + "?password=hunter2"
	logOpt, logs := logTo()
	n, err := relay.Start(context.Background(), relay.WithMatchmaker(mm), logOpt)
	if err != nil {
		t.Fatal(err)
	}
	n.Close()
	if s := logs.String(); strings.Contains(s, "hunter2") || !strings.Contains(s, "node started") {
		t.Fatalf("log:\n%s", s)
	}
}

// A request record with the given fields, as an attacker would build it.
func forgedCall(id envelope.MsgID, server, method string, replyTo []byte, body []byte) []byte {
	h := envelope.Header{Kind: envelope.KindCall, ID: id, Target: envelope.Target{Topic: "compute", Server: server},
		Method: method, ReplyTo: replyTo, Deadline: time.Now().Add(5 * time.Second).UnixNano()}
	return h.AppendRecord(nil, body)
}

// slowServer serves compute on n with a method "slow" that reports each
// call's msg_id on ids, then answers "real" after d.
func slowServer(t testing.TB, n *relay.Node, host string, d time.Duration) chan string {
	t.Helper()
	ids := make(chan string, 16)
	srv, err := n.Serve(compute)
	if err != nil {
		t.Fatal(err)
	}
	(&demo.Endpoint{Host: host}).Register(srv)
	srv.Handle("whoami", whoami)
	srv.Handle("slow", func(ctx context.Context, r *relay.Request) (any, error) {
		ids <- r.ID
		select {
		case <-time.After(d):
		case <-ctx.Done():
		}
		return "real", nil
	})
	return ids
}

// parseID reads a msg_id's hex.
func parseID(t testing.TB, s string) envelope.MsgID {
	t.Helper()
	var id envelope.MsgID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(id) {
		t.Fatalf("msg_id %q: %v", s, err)
	}
	copy(id[:], b)
	return id
}

// discard is a logger that drops everything.
var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// Fanout and notifications through publisher proxies with CURVE on: a
// central proxy with acks and a local one in front of a host's nodes. A
// subscriber the proxy does not admit gets nothing, and the proxy counts
// the refusal.
func TestCurvePublisherProxies(t *testing.T) {
	keys := newKeyring(t, "central", "local", "pub", "s0", "s1", "stranger")
	all := []string{"central", "local", "pub", "s0", "s1"}
	mm := newMatchmaker(t)
	central := startProxy(t, mm, proxy.WithAck(true), proxy.WithCurve(keys.secret("central"), keys.allowDir(t, all...)))
	if !strings.Contains(central.Endpoints(), curve.MemberKeySep+keys.public("central").String()) {
		t.Fatalf("central proxy registered %q, without its key", central.Endpoints())
	}
	startProxy(t, mm, proxy.WithLocal(true), proxy.WithHost("h1"), proxy.WithCurve(keys.secret("local"), keys.allowDir(t, all...)))
	ps := relay.WithPubSub(true)
	s0 := newNode(t, mm, "s0", ps, keys.with(t, "s0", all...))                       // through the central proxy
	s1 := newNode(t, mm, "s1", ps, relay.WithHost("h1"), keys.with(t, "s1", all...)) // through h1's local proxy
	counters := []*testutil.FanoutCounter{testutil.ServeCounter(t, s0, "foo"), testutil.ServeCounter(t, s1, "foo")}
	strangerLog, slog := logTo()
	stranger := newNode(t, mm, "stranger", ps, keys.with(t, "stranger", all...), strangerLog)
	strange := testutil.ServeCounter(t, stranger, "foo")
	pub := newNode(t, mm, "pub", ps, keys.with(t, "pub", all...))
	testutil.WaitSubscribed(t, pub, "foo", 15*time.Second, counters...)
	const msgs = 20
	for i := range msgs {
		if err := pub.Cast(ctxTimeout(t, 10*time.Second), relay.Target{Topic: "foo", Fanout: true}, "event", i); err != nil {
			t.Fatalf("fanout %d: %v", i, err)
		}
	}
	waitFor(t, 10*time.Second, func() error {
		for i, c := range counters {
			if err := c.Check(msgs); err != nil {
				return fmt.Errorf("s%d: %v", i, err)
			}
		}
		return nil
	})
	if n := strange.Distinct(); n != 0 {
		t.Errorf("a subscriber the proxy does not admit received %d fanouts", n)
	}
	waitFor(t, 5*time.Second, func() error {
		if c, _ := central.Refused(); c == 0 || stranger.Stats().Refused == 0 {
			return fmt.Errorf("the proxy counted %d refusals, the stranger %d", c, stranger.Stats().Refused)
		}
		return nil
	})
	if !strings.Contains(slog.String(), "publisher proxy refused") {
		t.Errorf("the stranger's log does not say the proxy refused it:\n%s", slog.String())
	}
	got := make(chan string, 4)
	l, err := s1.Listen([]string{"billing.info"}, "", func(_ context.Context, d *relay.Delivery) error {
		got <- d.EventType
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Stop()
	// The listener's subscription travels through the local proxy to the
	// central one (PUB/SUB): notify until it has, as a publisher would.
	waitFor(t, 15*time.Second, func() error {
		if err := pub.Notify(ctxTimeout(t, 2*time.Second), relay.Notification{Topic: "billing", EventType: "paid"}); err != nil {
			return err
		}
		select {
		case ev := <-got:
			if ev != "paid" {
				t.Fatalf("notification %q", ev)
			}
			return nil
		case <-time.After(200 * time.Millisecond):
			return fmt.Errorf("notification not delivered yet")
		}
	})
}

// Nodes of one process that hand calls to each other without a socket
// (WithInproc) apply the same rules: the server sees the caller's key, and
// refuses a key that is not on its allow-list.
func TestCurveInproc(t *testing.T) {
	keys := newKeyring(t, "server", "good", "stranger")
	mm := newMatchmaker(t)
	in := relay.WithInproc(true)
	server := newNode(t, mm, "server", in, keys.with(t, "server", "good"))
	serveWhoami(t, server, "server")
	good := newNode(t, mm, "good", in, keys.with(t, "good", "server"))
	stranger := newNode(t, mm, "stranger", in, keys.with(t, "stranger", "server"))
	var who map[string]string
	if err := good.Call(ctxTimeout(t, 5*time.Second), compute, "whoami", nil, &who); err != nil || who["name"] != "good" {
		t.Fatalf("whoami in process: %v, %v", who, err)
	}
	before := server.Stats().Refused
	if err := stranger.Call(ctxTimeout(t, 5*time.Second), compute, "whoami", nil, &who); !errors.Is(err, relay.ErrUnauthorized) {
		t.Fatalf("an unlisted key in process: %v, want ErrUnauthorized", err)
	}
	if server.Stats().Refused <= before {
		t.Error("the server did not count the refusal")
	}
	// A cast and a fanout take the same way (the fanout by inproc socket).
	if err := good.Cast(ctxTimeout(t, 5*time.Second), relay.Target{Topic: "compute", Fanout: true}, "add", 2); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() error {
		var st demo.State
		if err := good.Call(ctxTimeout(t, 2*time.Second), compute, "get", nil, &st); err != nil || st.Int != 2 {
			return fmt.Errorf("get: %+v, %v", st, err)
		}
		return nil
	})
}
