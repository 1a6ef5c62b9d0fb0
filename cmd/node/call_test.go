package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/relay-dev/relay/internal/testredis"
	"github.com/relay-dev/relay/internal/testutil"
)

// serveAlpha starts `node serve` as host alpha on topic compute of a fresh
// Redis and returns the Redis URL once alpha is registered.
func serveAlpha(t *testing.T) string {
	t.Helper()
	rs := testredis.Start(t)
	p := spawn(t, "serve", "--matchmaker", rs.URL(), "--host", "alpha", "--topic", "compute", "--ttl", "10s")
	p.waitLog("serving demo endpoint")
	return rs.URL()
}

// call runs `node call` on topic compute of mm and returns the result.
func call(t *testing.T, mm string, args ...string) result {
	t.Helper()
	return runNode(t, append([]string{"call", "--matchmaker", mm, "--topic", "compute"}, args...)...)
}

// jsonOut fails unless r succeeded with stdout one line of JSON equal to
// want's.
func jsonOut(t *testing.T, r result, want string) {
	t.Helper()
	if r.code != 0 {
		t.Errorf("exit %d: %s", r.code, r)
		return
	}
	if !strings.HasSuffix(r.stdout, "\n") || strings.Count(r.stdout, "\n") != 1 {
		t.Errorf("stdout is not one line: %q", r.stdout)
	}
	var got, exp any
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Errorf("stdout %q is not JSON: %v", r.stdout, err)
		return
	}
	if err := json.Unmarshal([]byte(want), &exp); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, exp) {
		t.Errorf("stdout %s, want %s", strings.TrimSpace(r.stdout), want)
	}
}

// node call takes JSON (inline, @FILE, stdin) and prints the reply as JSON;
// flags may follow the arguments.
func TestCallJSON(t *testing.T) {
	mm := serveAlpha(t)

	jsonOut(t, call(t, mm, "add", "5"), `5`)
	jsonOut(t, call(t, mm, "add", "-2"), `3`)
	jsonOut(t, call(t, mm, "append", "hello"), `"hello"`)
	jsonOut(t, call(t, mm, "append", `" world"`), `"hello world"`)
	jsonOut(t, call(t, mm, "get", "--server", "alpha"), `{"host":"alpha","int":3,"str":"hello world"}`)
	jsonOut(t, call(t, mm, "echo", `{"a":[1,2.5,"x",null,true],"b":{"c":-7}}`), `{"a":[1,2.5,"x",null,true],"b":{"c":-7}}`)
	jsonOut(t, call(t, mm, "echo"), `null`)
	jsonOut(t, call(t, mm, "echo", "--timeout", "10s", "18446744073709551615"), `18446744073709551615`)

	// 200 KB from a file, beyond what one command-line argument may hold.
	big := fmt.Sprintf(`{"blob":%q,"n":[1,2,3]}`, strings.Repeat("x", 200_000))
	path := filepath.Join(t.TempDir(), "big.json")
	if err := os.WriteFile(path, []byte(big), 0o644); err != nil {
		t.Fatal(err)
	}
	jsonOut(t, call(t, mm, "echo", "@"+path), big)
	// From standard input, by the same rules: JSON, or else the text.
	jsonOut(t, runNodeWith(t, big, nil, "call", "--matchmaker", mm, "--topic", "compute", "echo", "-"), big)
	jsonOut(t, runNodeWith(t, "plain text\n", nil, "call", "--matchmaker", mm, "--topic", "compute", "echo", "-"), `"plain text\n"`)

	// Over the maximum message size (16 MiB): exit 1 at once, naming the
	// size and the limit, not a timeout.
	huge := filepath.Join(t.TempDir(), "huge.txt")
	if err := os.WriteFile(huge, []byte(strings.Repeat("x", 17<<20)), 0o644); err != nil {
		t.Fatal(err)
	}
	expect(t, call(t, mm, "echo", "@"+huge, "--timeout", "60s"), 1,
		"message too large: CALL echo on compute is 178", "bytes, WithMaxMessageSize is 16777216")

	// A handler's error: exit 1, the remote error on stderr, nothing on stdout.
	r := call(t, mm, "subtract", "100")
	expect(t, r, 1, "remote error NegativeError: subtracting 100 from 3 would go negative")
	if r.stdout != "" {
		t.Errorf("stdout %q after an error", r.stdout)
	}
	expect(t, call(t, mm, "nosuch"), 1, "no such method")
	expect(t, call(t, mm, "add", `"five"`), 1, "BadRequest")
}

// node cast sends and exits 0; the cast arrives.
func TestCast(t *testing.T) {
	mm := serveAlpha(t)
	r := runNode(t, "cast", "--matchmaker", mm, "--topic", "compute", "add", "7", "--server", "alpha")
	if r.code != 0 || r.stdout != "" {
		t.Fatalf("cast: %s", r)
	}
	testutil.WaitFor(t, 20*time.Second, func() error {
		r := call(t, mm, "get")
		if r.code != 0 || !strings.Contains(r.stdout, `"int":7`) {
			return fmt.Errorf("get: %s", r)
		}
		return nil
	})
	expect(t, runNode(t, "cast", "--matchmaker", mm, "--topic", "compute", "--fanout", "add", "1"), 0)
}

// With nothing serving the topic, call fails with ErrNoServers (after the
// discovery wait, before --timeout).
func TestCallNoServers(t *testing.T) {
	rs := testredis.Start(t)
	expect(t, runNode(t, "call", "--matchmaker", rs.URL(), "--topic", "nobody", "--timeout", "5s", "get"), 1,
		"no servers for target")
}

func TestArgValue(t *testing.T) {
	for _, tc := range []struct {
		arg  string
		want any
	}{
		{"5", int64(5)},
		{"-5", int64(-5)},
		{"2.5", 2.5},
		{"1e3", 1000.0},
		{"true", true},
		{"null", nil},
		{`"42"`, "42"},
		{"hello", "hello"},
		{"4x", "4x"},
		{"hello world", "hello world"},
		{"", ""},
		{`{"a":1}`, map[string]any{"a": int64(1)}},
		{`[1,"b"]`, []any{int64(1), "b"}},
	} {
		got, err := argValue("ARG", tc.arg, nil)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("argValue(%q) = %#v, %v; want %#v", tc.arg, got, err, tc.want)
		}
	}
	for _, bad := range []string{`{"a":`, `[1,2`, `"unterminated`, `{"a":1} {"b":2}`} {
		if _, err := argValue("ARG", bad, nil); err == nil || !strings.Contains(err.Error(), "is not valid JSON") {
			t.Errorf("argValue(%q): err = %v, want 'is not valid JSON'", bad, err)
		}
	}
}

func TestJSONable(t *testing.T) {
	var b strings.Builder
	v := map[string]any{"m": map[any]any{int8(1): "x"}, "f": []any{nanValue()}, "b": []byte("hi")}
	if err := writeJSON(&b, v); err != nil {
		t.Fatal(err)
	}
	if want := `{"b":"aGk=","f":["NaN"],"m":{"1":"x"}}` + "\n"; b.String() != want {
		t.Errorf("writeJSON = %q, want %q", b.String(), want)
	}
}

func nanValue() float64 {
	zero := 0.0
	return zero / zero
}
