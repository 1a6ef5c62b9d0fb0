package relay_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relay-dev/relay"
	"github.com/relay-dev/relay/internal/demo"
)

// freePort returns a TCP port that was free a moment ago on 127.0.0.1.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// With a static hosts file, a server bound to the port its entry names is
// reached by bare and directed calls, and an edit of the file adds a server
// without restarting the client.
func TestFileMatchmaker(t *testing.T) {
	p1, p2 := freePort(t), freePort(t)
	path := filepath.Join(t.TempDir(), "hosts.json")
	write := func(content string) {
		if err := os.WriteFile(path+".tmp", []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			t.Fatal(err)
		}
	}
	write(fmt.Sprintf(`{"compute": ["127.0.0.1:%d"]}`, p1))
	mm := "file://" + path

	serve := func(host string, port int) *demo.Endpoint {
		n := newNode(t, mm, host, relay.WithPortRange(port, port))
		s, err := n.Serve(compute)
		if err != nil {
			t.Fatal(err)
		}
		ep := &demo.Endpoint{Host: host}
		ep.Register(s)
		return ep
	}
	a := serve("127.0.0.1", p1)
	client := newNode(t, mm, "client")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got int64
	if err := client.Call(ctx, compute, "add", 2, &got); err != nil || got != 2 {
		t.Fatalf("bare call = %d, %v", got, err)
	}
	if err := client.Call(ctx, relay.Target{Topic: "compute", Server: "127.0.0.1"}, "add", 3, &got); err != nil || got != 5 {
		t.Fatalf("directed call = %d, %v", got, err)
	}

	b := serve("localhost", p2)
	write(fmt.Sprintf(`{"compute": ["127.0.0.1:%d", "localhost:%d"]}`, p1, p2))
	waitFor(t, 5*time.Second, func() error {
		if err := client.Call(ctx, compute, "add", 1, nil); err != nil {
			return err
		}
		if b.State().Int == 0 {
			return fmt.Errorf("the server added to the file got no call yet (first has %d)", a.State().Int)
		}
		return nil
	})
}

// With a hosts file a directed target names the host field of an entry: a
// name that no entry has is ErrNoServers at the caller, listing the hosts
// the topic's entries name; a server whose own entry names another host
// than it serves as warns at Serve (a directed cast to that host would be
// dropped there, unseen by its caller).
func TestFileMatchmakerDirected(t *testing.T) {
	port := freePort(t)
	path := filepath.Join(t.TempDir(), "hosts.json")
	if err := os.WriteFile(path, []byte(fmt.Sprintf(`{"compute": ["127.0.0.1:%d"]}`, port)), 0o644); err != nil {
		t.Fatal(err)
	}
	mm := "file://" + path
	logs := &logBuffer{}
	server := newNode(t, mm, "gamma", relay.WithPortRange(port, port),
		relay.WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	if _, err := server.Serve(compute); err != nil {
		t.Fatal(err)
	}
	if w := fmt.Sprintf("entry=127.0.0.1:%d entry_host=127.0.0.1 serves_as=gamma", port); !strings.Contains(logs.String(), w) {
		t.Errorf("Serve under another name than the entry's host logged %q, want %q", logs, w)
	}

	client := newNode(t, mm, "client", relay.WithDiscoveryWait(100*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	directed := relay.Target{Topic: compute.Topic, Server: "gamma"}
	for _, err := range []error{client.Cast(ctx, directed, "add", 1), client.Call(ctx, directed, "add", 1, nil)} {
		if !errors.Is(err, relay.ErrNoServers) || !strings.Contains(err.Error(),
			"a directed target (Target.Server) names the host field of an entry, and the entries of compute name 127.0.0.1") {
			t.Errorf("directed to gamma = %v; want ErrNoServers naming the entries' hosts", err)
		}
	}
}
