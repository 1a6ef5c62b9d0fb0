package main

import (
	"fmt"
	"os"
	"path/filepath"
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
