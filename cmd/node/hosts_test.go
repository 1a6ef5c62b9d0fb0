package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	procpkg "github.com/relay-dev/relay/internal/proc"
)

// hostsFile writes a hosts file with the given content into a temporary
// directory and returns its matchmaker URL.
func hostsFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hosts.json")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return "file://" + path
}

// freePort returns a port free on addr now.
func freePort(t *testing.T, addr string) int {
	t.Helper()
	port, err := procpkg.FreePort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// --bind with an interface name binds that interface's address and
// advertises it, so that a hosts-file client reaches the server there.
func TestServeBindInterface(t *testing.T) {
	port := freePort(t, "127.0.0.1")
	mm := hostsFile(t, fmt.Sprintf(`{"compute": ["127.0.0.1:%d"]}`, port))
	p := spawn(t, "serve", "--matchmaker", mm, "--host", "127.0.0.1", "--bind", "lo",
		"--ports", fmt.Sprintf("%d-%d", port, port), "--topic", "compute")
	p.waitLog(fmt.Sprintf("endpoint=tcp://127.0.0.1:%d", port))
	jsonOut(t, call(t, mm, "get", "--server", "127.0.0.1"), `{"host":"127.0.0.1","int":0,"str":""}`)
}

// With a hosts file, a directed target names the host field of an entry:
// a cast or call to a name no entry has fails at the caller (exit 1),
// saying so and listing the hosts; a server whose entry names another host
// than its --host warns at start, since a directed cast to that host would
// be dropped where its caller cannot see it.
func TestHostsFileDirected(t *testing.T) {
	port := freePort(t, "127.0.0.1")
	mm := hostsFile(t, fmt.Sprintf(`{"compute": ["127.0.0.1:%d"]}`, port))
	p := spawn(t, "serve", "--matchmaker", mm, "--host", "gamma", "--bind", "127.0.0.1",
		"--ports", fmt.Sprintf("%d-%d", port, port), "--topic", "compute")
	p.waitLog("serving demo endpoint")
	for _, want := range []string{"the hosts file lists this node under another host name than it serves as",
		fmt.Sprintf("entry=127.0.0.1:%d", port), "serves_as=gamma", "node serve --host 127.0.0.1"} {
		if !strings.Contains(p.stderr.String(), want) {
			t.Errorf("serve's log lacks %q:\n%s", want, p.stderr)
		}
	}
	for _, verb := range []string{"cast", "call"} {
		expect(t, runNode(t, verb, "--matchmaker", mm, "--topic", "compute", "add", "5", "--server", "gamma"), 1,
			"no servers for target: compute/gamma",
			"with a hosts file a directed target (--server) names the host field of an entry, and the entries of compute name 127.0.0.1")
	}
	expect(t, runNode(t, "call", "--matchmaker", mm, "--topic", "elsewhere", "get"), 1,
		"no servers for target: elsewhere", "the hosts file has no entry for elsewhere")
	// Named by its entry's host, the call reaches it and is refused there.
	expect(t, runNode(t, "call", "--matchmaker", mm, "--topic", "compute", "get", "--server", "127.0.0.1"), 1,
		"no such method", "host gamma serves no topic compute")
}
