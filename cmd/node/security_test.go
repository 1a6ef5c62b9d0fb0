package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relay-dev/relay/curve"
	"github.com/relay-dev/relay/internal/testredis"
)

// node keygen writes a key pair, the secret one 0600, and refuses to
// overwrite it without --force.
func TestKeygen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	r := runNode(t, "keygen", "--dir", dir, "alpha")
	if r.code != 0 {
		t.Fatalf("keygen: %s", r)
	}
	kp, err := curve.LoadKeyPair(filepath.Join(dir, "alpha.key"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.stdout, kp.Public.String()) || strings.Contains(r.stdout+r.stderr, kp.Secret.String()) {
		t.Fatalf("keygen printed %q: want the public key and never the secret one", r.stdout)
	}
	if st, _ := os.Stat(filepath.Join(dir, "alpha.key")); st.Mode().Perm() != 0o600 {
		t.Fatalf("secret key mode %v", st.Mode().Perm())
	}
	if a, err := curve.LoadAllowList(filepath.Join(dir, "alpha.pub")); err != nil || a.Len() != 1 {
		t.Fatalf("the public file is not an allow-list of one key: %v", err)
	}
	expect(t, runNode(t, "keygen", "--dir", dir, "alpha"), 1, "alpha.key", "--force replaces it")
	if again, _ := curve.LoadKeyPair(filepath.Join(dir, "alpha.key")); again != kp {
		t.Fatal("a refused keygen changed the key")
	}
	if r := runNode(t, "keygen", "--dir", dir, "--force", "alpha"); r.code != 0 {
		t.Fatalf("keygen --force: %s", r)
	}
	if again, _ := curve.LoadKeyPair(filepath.Join(dir, "alpha.key")); again == kp {
		t.Fatal("keygen --force kept the old key")
	}
	expect(t, runNode(t, "keygen", "--dir", dir, "../evil"), 2, `NAME "../evil": want a plain file name`)
	expect(t, runNode(t, "keygen", "--dir", dir), 2, "want one NAME")
}

// CURVE flag mistakes are reported in terms of the flag, before a node
// starts; a wildcard bind without --advertise says what to add.
func TestCurveFlagErrors(t *testing.T) {
	dir := t.TempDir()
	if r := runNode(t, "keygen", "--dir", dir, "n"); r.code != 0 {
		t.Fatal(r)
	}
	key, pub := filepath.Join(dir, "n.key"), filepath.Join(dir, "n.pub")
	base := []string{"serve", "--matchmaker", "memory://x", "--topic", "t"}
	expect(t, runNode(t, append(base, "--curve-key", key)...), 2, "--curve-key needs --curve-allow")
	expect(t, runNode(t, append(base, "--curve-allow", pub)...), 2, "--curve-allow needs --curve-key")
	expect(t, runNode(t, append(base, "--curve-key", pub, "--curve-allow", pub)...), 2, "--curve-key "+pub, "no secret-key")
	expect(t, runNode(t, append(base, "--curve-key", key, "--curve-allow", key)...), 2, "--curve-allow "+key, "holds a secret key")
	expect(t, runNode(t, "call", "--matchmaker", "memory://x", "--topic", "t", "--curve-key", key, "--curve-allow", filepath.Join(dir, "missing"), "get"), 2,
		"--curve-allow")
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	r := runNode(t, append(base, "--curve-key", key, "--curve-allow", pub)...)
	expect(t, r, 2, "--curve-key "+key, "chmod 600 "+key)
	expect(t, runNode(t, "proxy", "--router", "--matchmaker", "memory://x", "--curve-key", key, "--curve-allow", pub), 2, "chmod 600")
	expect(t, runNode(t, append(base, "--bind", "0.0.0.0")...), 1, "--bind", "--advertise")
	expect(t, runNode(t, "proxy", "--router", "--matchmaker", "memory://x", "--bind", "0.0.0.0"), 1, "--advertise")
}

// serve and call across processes with CURVE: a client with an allowed key
// gets its answer; one without keys, or with a key the server does not
// list, exits 1 with "unauthorized" at once, and the server logs it.
// SIGHUP reloads the allow-list (and does not end the process).
func TestCurveServeCall(t *testing.T) {
	rs := testredis.Start(t, testredis.WithPassword("s3cret-pw"))
	keys := t.TempDir()
	for _, n := range []string{"server", "client", "stranger"} {
		if r := runNode(t, "keygen", "--dir", keys, n); r.code != 0 {
			t.Fatal(r)
		}
	}
	allow := func(names ...string) string {
		d := t.TempDir()
		for _, n := range names {
			b, _ := os.ReadFile(filepath.Join(keys, n+".pub"))
			os.WriteFile(filepath.Join(d, n+".pub"), b, 0o644)
		}
		return d
	}
	serverAllow := allow("client")
	srv := spawn(t, "serve", "--matchmaker", rs.URL(), "--host", "alpha", "--topic", "compute",
		"--curve-key", filepath.Join(keys, "server.key"), "--curve-allow", serverAllow)
	srv.waitLog("serving demo endpoint")
	call := func(extra ...string) result {
		return runNode(t, append([]string{"call", "--matchmaker", rs.URL(), "--topic", "compute", "--timeout", "10s", "echo", "hi"}, extra...)...)
	}
	clientAllow := allow("server")
	r := call("--curve-key", filepath.Join(keys, "client.key"), "--curve-allow", clientAllow)
	if r.code != 0 || strings.TrimSpace(r.stdout) != `"hi"` {
		t.Fatalf("call with the client's key: %s", r)
	}
	start := time.Now()
	expect(t, call(), 1, "unauthorized", "requires CURVE")
	expect(t, call("--curve-key", filepath.Join(keys, "stranger.key"), "--curve-allow", clientAllow), 1, "unauthorized", "not on its allow-list")
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("the refused calls took %v: they must not wait for their deadline", d)
	}
	srv.waitLog("client refused: its CURVE key is not on the allow-list")
	srv.waitLog(readPub(t, filepath.Join(keys, "stranger.pub")))
	_ = srv.cmd.Process.Signal(syscall.SIGHUP)
	srv.waitLog("SIGHUP: allow-list read again")
	for _, out := range []string{srv.stderr.String(), r.stderr} {
		if strings.Contains(out, "s3cret-pw") {
			t.Fatalf("a password was printed:\n%s", out)
		}
	}
}

// readPub returns the public key of a public key file.
func readPub(t testing.TB, path string) string {
	t.Helper()
	a, err := curve.LoadAllowList(path)
	if err != nil || a.Len() != 1 {
		t.Fatalf("%s: %v", path, err)
	}
	return strings.Fields(a.Names()[0])[1]
}

// node bench --curve runs both sides in one run and prints them side by
// side.
func TestBenchCurve(t *testing.T) {
	r := runNode(t, "bench", "--curve", "--n", "20", "--calls", "20", "--casts", "20")
	if r.code != 0 {
		t.Fatalf("bench --curve: %s", r)
	}
	for _, want := range []string{"CURVE/plaintext", "call latency p50", "pipelined calls/s", "casts/s", "allocations per call"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("bench --curve output lacks %q:\n%s", want, r.stdout)
		}
	}
}
