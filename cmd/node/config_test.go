package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relay-dev/relay/internal/testredis"
	"github.com/relay-dev/relay/internal/testutil"
)

func testFlags() (*flag.FlagSet, *string, *string, *time.Duration) {
	fs := newFlagSet("serve")
	host := fs.String("host", "default-host", "")
	mm := fs.String("matchmaker", "", "")
	ttl := fs.Duration("ttl", 30*time.Second, "")
	return fs, host, mm, ttl
}

func lookup(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// Command line beats RELAY_* beats the config file beats the default; keys
// of other commands are ignored.
func TestConfigPrecedence(t *testing.T) {
	path := writeFile(t, "node.yaml", "host: from-file\nmatchmaker: memory://file\nttl: 10s\ncount: 3\npool: p\n")
	fs, host, mm, ttl := testFlags()
	if _, _, err := parseArgs(fs, []string{"--config", path, "--host", "from-flag"}); err != nil {
		t.Fatal(err)
	}
	if err := applyConfig(fs, lookup(map[string]string{"RELAY_HOST": "from-env", "RELAY_MATCHMAKER": "memory://env"})); err != nil {
		t.Fatal(err)
	}
	if *host != "from-flag" || *mm != "memory://env" || *ttl != 10*time.Second {
		t.Errorf("host=%q matchmaker=%q ttl=%v; want from-flag, memory://env, 10s", *host, *mm, *ttl)
	}

	// RELAY_CONFIG names the file when --config is not given.
	fs, host, _, _ = testFlags()
	if err := applyConfig(fs, lookup(map[string]string{"RELAY_CONFIG": path})); err != nil || *host != "from-file" {
		t.Errorf("RELAY_CONFIG: host=%q err=%v", *host, err)
	}
}

// A relative file: matchmaker in a config file is relative to the file.
func TestConfigRelativeHostsFile(t *testing.T) {
	path := writeFile(t, "node.yaml", "matchmaker: file:hosts.json\n")
	fs, _, mm, _ := testFlags()
	if err := applyConfig(fs, lookup(map[string]string{"RELAY_CONFIG": path})); err != nil {
		t.Fatal(err)
	}
	if want := "file://" + filepath.Join(filepath.Dir(path), "hosts.json"); *mm != want {
		t.Errorf("matchmaker = %q, want %q", *mm, want)
	}
}

func TestConfigBadValues(t *testing.T) {
	for _, tc := range []struct {
		file, env, want string
	}{
		{file: "ttl: soon\n", want: `--ttl from FILE line 1 (ttl: "soon"): want a duration`},
		{env: "soon", want: `--ttl from RELAY_TTL="soon": want a duration`},
		{file: "host: a\ncolour: red\n", want: `FILE line 2: "colour" is not a flag of any node command`},
		{file: "host: [a, b]\n", want: "FILE line 1: host: want a single value"},
		{file: "host: a\nhost: b\n", want: `"host" is set twice`},
		{file: "host: [\n", want: "config file FILE"},
		{file: "- host\n", want: "want a map of flag names to values"},
	} {
		vars := map[string]string{}
		path := ""
		if tc.file != "" {
			path = writeFile(t, "c.yaml", tc.file)
			vars["RELAY_CONFIG"] = path
		}
		if tc.env != "" {
			vars["RELAY_TTL"] = tc.env
		}
		fs, _, _, _ := testFlags()
		err := applyConfig(fs, lookup(vars))
		if want := strings.ReplaceAll(tc.want, "FILE", path); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("file %q env %q: err = %v, want it to contain %q", tc.file, tc.env, err, want)
		}
	}
}

// One config file serves every command, each taking the keys it knows; the
// environment still beats it and the command line beats both.
func TestConfigEveryCommand(t *testing.T) {
	rs := testredis.Start(t)
	cfg := writeFile(t, "node.yaml", fmt.Sprintf(`# every command reads this file
matchmaker: %s
topic: cfgtopic
host: cfg-alpha
timeout: 10s
ttl: 10s
pool: cfgpool
priority: warn
count: 1
n: 20
calls: 20
casts: 20
fanouts: 0
rounds: 1
flood: 20
pending: 20
`, rs.URL()))

	serve := spawn(t, "serve", "--config", cfg)
	serve.waitLog("serving demo endpoint")
	if !strings.Contains(serve.stderr.String(), "host=cfg-alpha") {
		t.Errorf("serve did not take host from the file:\n%s", serve.stderr)
	}
	r := runNode(t, "status", "--config", cfg)
	if r.code != 0 || !strings.Contains(r.stdout, "cfgtopic") || !strings.Contains(r.stdout, "cfg-alpha") {
		t.Errorf("status --config: %s", r)
	}
	jsonOut(t, runNode(t, "call", "--config", cfg, "add", "2"), `2`)
	if r := runNode(t, "cast", "--config", cfg, "add", "3"); r.code != 0 {
		t.Errorf("cast --config: %s", r)
	}
	testutil.WaitFor(t, 20*time.Second, func() error {
		r := runNode(t, "call", "--config", cfg, "get", "--server", "cfg-alpha")
		if r.code != 0 || !strings.Contains(r.stdout, `"int":5`) {
			return fmt.Errorf("get: %s", r)
		}
		return nil
	})
	// The environment beats the file, the command line beats both.
	expect(t, runNodeWith(t, "", []string{"RELAY_TOPIC=elsewhere"}, "call", "--config", cfg, "get"), 1, "no servers for target")
	jsonOut(t, runNodeWith(t, "", []string{"RELAY_TOPIC=elsewhere"}, "call", "--config", cfg, "--topic", "cfgtopic", "echo", "1"), `1`)
	// RELAY_CONFIG names the file too.
	jsonOut(t, runNodeWith(t, "", []string{"RELAY_CONFIG=" + cfg}, "call", "echo", "2"), `2`)

	listen := spawn(t, "listen", "--config", cfg) // count: 1, pool: cfgpool
	listen.waitLog("msg=listening")
	if r := runNode(t, "notify", "--config", cfg, "ev", `{"k":1}`); r.code != 0 { // priority: warn
		t.Errorf("notify --config: %s", r)
	}
	if code := listen.wait(); code != 0 || !strings.Contains(listen.stdout.String(), `"priority":"warn"`) ||
		!strings.Contains(listen.stdout.String(), `"payload":{"k":1}`) {
		t.Errorf("listen --config: exit %d, stdout %s", code, listen.stdout)
	}

	proxy := spawn(t, "proxy", "--config", cfg, "--router")
	proxy.waitLog("proxy running")
	proxy.stop()

	if r := runNode(t, "demo", "--config", cfg); r.code != 0 || !strings.Contains(r.stdout, "Demo finished.") {
		t.Errorf("demo --config: %s", r)
	}
	r = runNode(t, "bench", "--config", cfg, "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"n": 20,`) {
		t.Errorf("bench --config (n: 20 from the file): %s", r)
	}
}

// The same mistakes in a config file get the same message every time (the
// first in the file, whatever the command).
func TestConfigMessagesDeterministic(t *testing.T) {
	cfg := writeFile(t, "bad.yaml", "matchmaker: memory://x\nshape: round\ncolour: red\ntimeout: soon\n")
	want := fmt.Sprintf(`config file %s line 2: "shape" is not a flag of any node command`, cfg)
	for _, cmd := range []string{"serve", "call", "status", "status", "bench", "demo"} {
		expect(t, runNode(t, cmd, "--config", cfg), 2, want)
	}
	cfg = writeFile(t, "bad2.yaml", "ttl: later\ntimeout: soon\n")
	for range 3 {
		expect(t, runNode(t, "status", "--config", cfg, "--matchmaker", "memory://x"), 2, `--timeout from `+cfg+` line 2 (timeout: "soon")`)
	}
}

// testdata/node.yaml works as the README says, with no Redis: serve, call,
// a directed call naming the hosts file's host, status.
func TestShippedConfig(t *testing.T) {
	const cfg = "../../testdata/node.yaml"
	serve := spawn(t, "serve", "--config", cfg)
	serve.waitLog("serving demo endpoint")
	jsonOut(t, runNode(t, "call", "--config", cfg, "add", "5"), `5`)
	jsonOut(t, runNode(t, "call", "--config", cfg, "get", "--server", "127.0.0.2"), `{"host":"127.0.0.2","int":5,"str":""}`)
	r := runNode(t, "status", "--config", cfg)
	if r.code != 0 || !strings.Contains(r.stdout, "nova      scheduler  (any)   tcp://127.0.0.2:7002  static") {
		t.Errorf("status --config %s: %s", cfg, r)
	}
}

// --matchmaker values: URLs pass, a relative file: URL is made absolute,
// the rest is refused with a suggestion.
func TestMatchmakerURL(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]string{
		"redis://127.0.0.1:6379":  "redis://127.0.0.1:6379",
		"memory://x":              "memory://x",
		"file:///etc/hosts.json":  "file:///etc/hosts.json",
		"file:hosts.json":         "file://" + filepath.Join(wd, "hosts.json"),
		"file:../../testdata/h.j": "file://" + filepath.Join(wd, "../../testdata/h.j"),
	} {
		if got, err := matchmakerURL(in); err != nil || got != want {
			t.Errorf("matchmakerURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		"":                "--matchmaker is required",
		"127.0.0.1:16479": "did you mean redis://127.0.0.1:16479?",
		"hosts.json":      "did you mean file://" + filepath.Join(wd, "hosts.json") + "?",
		"redis":           "has no scheme: want memory://NAME",
	} {
		if _, err := matchmakerURL(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("matchmakerURL(%q): err = %v, want %q", in, err, want)
		}
	}
}

// -h checks the config file and the environment first: a missing file or
// a bad value in it fails, instead of the help being printed over it.
func TestConfigCheckedWithHelp(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("ttl: soon\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.yaml")
	expect(t, runNode(t, "serve", "--config", missing, "-h"), 2, missing)
	expect(t, runNode(t, "serve", "--config", bad, "-h"), 2, "--ttl", bad)
	expect(t, runNodeWith(t, "", []string{"RELAY_TTL=soon"}, "serve", "-h"), 2, "RELAY_TTL")
	if r := runNode(t, "serve", "--config", "../../testdata/node.yaml", "-h"); r.code != 0 || !strings.Contains(r.stdout, "serve") {
		t.Errorf("serve --config testdata/node.yaml -h: %s", r)
	}
}
