package main

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func testFlags() (*flag.FlagSet, *string, *string, *time.Duration) {
	fs := newFlagSet("serve", "", "", "", io.Discard)
	host := fs.String("host", "default-host", "")
	mm := fs.String("matchmaker", "", "")
	ttl := fs.Duration("ttl", 30*time.Second, "")
	return fs, host, mm, ttl
}

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

// Command line beats RELAY_* beats the config file beats the default.
func TestConfigPrecedence(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.yaml")
	if err := os.WriteFile(path, []byte("host: from-file\nmatchmaker: memory://file\nttl: 10s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fs, host, mm, ttl := testFlags()
	if err := fs.Parse([]string{"--config", path, "--host", "from-flag"}); err != nil {
		t.Fatal(err)
	}
	if err := applyConfig(fs, env(map[string]string{"RELAY_HOST": "from-env", "RELAY_MATCHMAKER": "memory://env"})); err != nil {
		t.Fatal(err)
	}
	if *host != "from-flag" || *mm != "memory://env" || *ttl != 10*time.Second {
		t.Errorf("host=%q matchmaker=%q ttl=%v; want from-flag, memory://env, 10s", *host, *mm, *ttl)
	}

	// RELAY_CONFIG names the file when --config is not given.
	fs, host, _, _ = testFlags()
	_ = fs.Parse(nil)
	if err := applyConfig(fs, env(map[string]string{"RELAY_CONFIG": path})); err != nil || *host != "from-file" {
		t.Errorf("RELAY_CONFIG: host=%q err=%v", *host, err)
	}
}

func TestConfigBadValues(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		file, env, want string
	}{
		{file: "ttl: soon\n", want: "option --ttl from"},
		{env: "soon", want: "option --ttl from RELAY_TTL"},
		{file: "colour: red\n", want: `"colour" is not an option`},
		{file: "host: [a, b]\n", want: "want a single value"},
		{file: "host: [\n", want: "config file"},
	} {
		path := ""
		if tc.file != "" {
			path = filepath.Join(dir, "c.yaml")
			if err := os.WriteFile(path, []byte(tc.file), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		vars := map[string]string{}
		if tc.env != "" {
			vars["RELAY_TTL"] = tc.env
		}
		if path != "" {
			vars["RELAY_CONFIG"] = path
		}
		fs, _, _, _ := testFlags()
		_ = fs.Parse(nil)
		err := applyConfig(fs, env(vars))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("file %q env %q: err = %v, want it to contain %q", tc.file, tc.env, err, tc.want)
		}
	}
}

// The documented example parses for node serve.
func TestConfigExample(t *testing.T) {
	code, _, errOut := runArgs(t, "serve", "--config", "../../testdata/node.yaml", "-h")
	if code != 0 {
		t.Fatalf("serve --config testdata/node.yaml -h: exit %d: %s", code, errOut)
	}
	fs := newFlagSet("serve", "", "", "", io.Discard)
	for _, name := range []string{"matchmaker", "host", "bind", "ports", "topic", "exchange", "namespace", "version"} {
		fs.String(name, "", "")
	}
	_ = fs.Parse([]string{"--config", "../../testdata/node.yaml"})
	if err := applyConfig(fs, env(nil)); err != nil {
		t.Fatalf("testdata/node.yaml: %v", err)
	}
	if got := fs.Lookup("bind").Value.String(); got != "127.0.0.2" {
		t.Errorf("bind from the example = %q", got)
	}
}
