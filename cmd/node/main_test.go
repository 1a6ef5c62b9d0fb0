package main

import (
	"bytes"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// runArgs runs the command line and returns its exit code and output.
func runArgs(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestHelp(t *testing.T) {
	code, out, _ := runArgs(t, "-h")
	if code != 0 {
		t.Fatalf("node -h: exit %d, want 0", code)
	}
	for _, want := range []string{"serve", "call", "cast", "demo", "bench", "Examples:", "memory://"} {
		if !strings.Contains(out, want) {
			t.Errorf("node -h lacks %q:\n%s", want, out)
		}
	}
	for _, cmd := range []string{"serve", "call", "cast", "demo", "bench"} {
		code, out, _ := runArgs(t, cmd, "-h")
		if code != 0 || !strings.Contains(out, "Usage: node "+cmd) || !strings.Contains(out, "Examples:") {
			t.Errorf("node %s -h: exit %d, output:\n%s", cmd, code, out)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"serve", "--topic", "compute"},        // no matchmaker
		{"call", "--matchmaker", "memory://x"}, // no topic
		{"call", "--matchmaker", "memory://x", "--topic", "t"}, // no method
		{"serve", "--matchmaker", "memory://x", "--topic", "t", "--ports", "10"},
		{"bench", "--bogus"},
	} {
		if code, _, _ := runArgs(t, args...); code != 2 {
			t.Errorf("node %q: exit %d, want 2", args, code)
		}
	}
}

func TestUnknownMatchmakerScheme(t *testing.T) {
	for _, args := range [][]string{
		{"serve", "--matchmaker", "bogus://127.0.0.1:6379", "--topic", "compute"},
		{"call", "--matchmaker", "bogus://127.0.0.1:6379", "--topic", "compute", "add", "1"},
		{"cast", "--matchmaker", "bogus://127.0.0.1:6379", "--topic", "compute", "add", "1"},
	} {
		code, _, errOut := runArgs(t, args...)
		if code != 1 || !strings.Contains(errOut, `unknown scheme "bogus"`) {
			t.Errorf("node %q: exit %d, stderr %q; want exit 1 and the matchmaker's unknown-scheme error", args, code, errOut)
		}
	}
}

func TestCallNoServers(t *testing.T) {
	// The timeout exceeds the discovery wait (1s), so the wait ends first.
	code, _, errOut := runArgs(t, "call", "--matchmaker", "memory://cmd-test", "--topic", "nobody",
		"--timeout", "5s", "get")
	if code != 1 || !strings.Contains(errOut, "no servers for target") {
		t.Errorf("call with no server: exit %d, stderr %q; want exit 1 and ErrNoServers", code, errOut)
	}
}

func TestParseArg(t *testing.T) {
	if v, ok := parseArg("42").(int64); !ok || v != 42 {
		t.Errorf("parseArg(42) = %#v, want int64 42", parseArg("42"))
	}
	if v, ok := parseArg("4x").(string); !ok || v != "4x" {
		t.Errorf("parseArg(4x) = %#v, want string", parseArg("4x"))
	}
}

func TestRate(t *testing.T) {
	for in, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 1234567.4: "1,234,567"} {
		if got := rate(in); got != want {
			t.Errorf("rate(%v) = %q, want %q", in, got, want)
		}
	}
}
