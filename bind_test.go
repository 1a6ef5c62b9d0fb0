package relay_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relay-dev/relay"
	"github.com/relay-dev/relay/matchmaker"
)

// startFails starts a node with opts that must fail with a *BindError,
// and returns it with what the node logged at WARN and above (a restart of
// the poller would log there).
func startFails(t *testing.T, opts ...relay.Option) (*relay.BindError, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	logs := &logBuffer{}
	opts = append([]relay.Option{relay.WithMatchmaker(newMatchmaker(t)),
		relay.WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})))}, opts...)
	n, err := relay.Start(ctx, opts...)
	if err == nil {
		n.Close()
		t.Fatal("Start succeeded")
	}
	var be *relay.BindError
	if !errors.As(err, &be) {
		t.Fatalf("Start = %v (%T), want a *relay.BindError", err, err)
	}
	return be, logs.String()
}

// wants fails the test unless msg holds every one of want.
func wants(t *testing.T, msg string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("%q lacks %q", msg, w)
		}
	}
}

// A port in use fails Start at once with a *BindError naming the options
// and the fix; the poller is not restarted over it.
func TestBindPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	be, logged := startFails(t, relay.WithPortRange(port, port))
	if !errors.Is(be, syscall.EADDRINUSE) {
		t.Errorf("%v does not match syscall.EADDRINUSE", be)
	}
	if be.Address != "127.0.0.1" || be.PortMin != port || be.PortMax != port {
		t.Errorf("BindError %+v, want address 127.0.0.1 and port %d", be, port)
	}
	wants(t, be.Error(), "WithBindAddress 127.0.0.1", "WithPortRange", "in use", "Fix: ")
	if logged != "" {
		t.Errorf("a bind failure logged warnings (restarts?):\n%s", logged)
	}
}

// An address of no local interface, a name that is no interface, and an
// IPv6 address each fail Start at once, naming WithBindAddress and this
// host's addresses.
func TestBindBadAddress(t *testing.T) {
	for _, tc := range []struct {
		addr string
		is   error
		want string
	}{
		{"203.0.113.7", syscall.EADDRNOTAVAIL, "is not an address of this host"},
		{"nosuchif0", nil, "neither an IP address nor an interface of this host"},
		{"::1", nil, "IPv6"},
	} {
		be, logged := startFails(t, relay.WithBindAddress(tc.addr))
		if tc.is != nil && !errors.Is(be, tc.is) {
			t.Errorf("%s: %v does not match %v", tc.addr, be, tc.is)
		}
		wants(t, be.Error(), "WithBindAddress "+tc.addr, tc.want, "lo 127.0.0.1", "Fix: ")
		if logged != "" {
			t.Errorf("%s: a bind failure logged warnings (restarts?):\n%s", tc.addr, logged)
		}
	}
}

// An interface name binds that interface's address and registers it,
// never the name; WithAdvertise still overrides what is registered.
func TestBindInterface(t *testing.T) {
	mm := newMatchmaker(t)
	srv := newNode(t, mm, "s0", relay.WithBindAddress("lo"))
	if ep := srv.Endpoint(); !strings.HasPrefix(ep, "tcp://127.0.0.1:") {
		t.Fatalf("node bound to interface lo has endpoint %q, want tcp://127.0.0.1:PORT", ep)
	}
	s, err := srv.Serve(compute)
	if err != nil {
		t.Fatal(err)
	}
	s.Handle("host", func(context.Context, *relay.Request) (any, error) { return "s0", nil })

	reg, err := matchmaker.Open(mm)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	members, err := reg.Lookup(ctx, matchmaker.Key{Topic: compute.Topic, Server: "s0"})
	if err != nil || len(members) != 1 || members[0] != srv.Endpoint() {
		t.Fatalf("registered %v (%v), want [%s]", members, err, srv.Endpoint())
	}

	client := newNode(t, mm, "client")
	var got string
	if err := client.Call(ctx, compute, "host", nil, &got); err != nil || got != "s0" {
		t.Fatalf("call through the interface's address = %q, %v", got, err)
	}

	adv := newNode(t, newMatchmaker(t), "s1", relay.WithBindAddress("lo"), relay.WithAdvertise("127.0.0.9"))
	if ep := adv.Endpoint(); !strings.HasPrefix(ep, "tcp://127.0.0.9:") {
		t.Errorf("endpoint %q, want the advertised 127.0.0.9", ep)
	}
}
