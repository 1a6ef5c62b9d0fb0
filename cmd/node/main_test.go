package main

import (
	"flag"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// node -h lists every command and says what proxy runs; each command's -h
// prints its usage, flags and examples to stdout and exits 0.
func TestHelp(t *testing.T) {
	r := runNode(t, "-h")
	if r.code != 0 {
		t.Fatalf("node -h: %s", r)
	}
	for _, want := range []string{"serve", "call", "cast", "notify", "listen", "status", "demo", "bench",
		"router proxy (calls, casts) or a publisher proxy (fanout, notifications)", "Examples:", "memory://", "--config"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("node -h lacks %q:\n%s", want, r.stdout)
		}
	}
	for _, c := range commands() {
		r := runNode(t, c.name, "-h")
		if r.code != 0 || !strings.Contains(r.stdout, "Usage: node "+c.name) || !strings.Contains(r.stdout, "Examples:") || r.stderr != "" {
			t.Errorf("node %s -h: %s", c.name, r)
		}
	}
	// -h after the arguments works too.
	if r := runNode(t, "call", "add", "5", "-h"); r.code != 0 || !strings.Contains(r.stdout, "Usage: node call") {
		t.Errorf("node call add 5 -h: %s", r)
	}
	// serve --acks says servers acknowledge without it.
	r = runNode(t, "serve", "-h")
	for _, want := range []string{"Servers always acknowledge", "--acks\n    \tonly for the calls and casts this node sends itself"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("node serve -h lacks %q:\n%s", want, r.stdout)
		}
	}
}

// Bad command lines exit 2 with a message naming the flag as typed and the
// fix, and where to find help.
func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  []string
		want []string
	}{
		{args: []string{}, want: []string{"Usage:"}},
		{args: []string{"frobnicate"}, want: []string{`unknown command "frobnicate"`}},
		{args: []string{"serve", "--topic", "compute"}, want: []string{"--matchmaker is required"}},
		{args: []string{"call", "--matchmaker", "memory://x"}, want: []string{"--topic is required"}},
		{args: []string{"call", "--matchmaker", "memory://x", "--topic", "t"}, want: []string{"want METHOD [ARG]"}},
		{args: []string{"call", "--matchmaker", "memory://x", "--topic", "t", "add", "1", "2"}, want: []string{`want METHOD [ARG], got ["add" "1" "2"]`}},
		{args: []string{"serve", "--matchmaker", "memory://x", "--topic", "t", "--ports", "10"}, want: []string{"--ports: want MIN-MAX"}},
		{args: []string{"bench", "--bogus"}, want: []string{"unknown flag --bogus", "Run 'node bench -h' for help."}},
		{args: []string{"call", "--matchmaker", "memory://x", "--topic", "t", "get", "--server"}, want: []string{"--server needs a value"}},
		{args: []string{"call", "--matchmaker", "memory://x", "--topic", "t", "--fanout", "add", "1"}, want: []string{"unknown flag --fanout"}},
		{args: []string{"status", "--matchmaker", "memory://x", "extra"}, want: []string{`unexpected arguments ["extra"]`}},
		// Durations say the form they take, from the command line and the environment.
		{args: []string{"call", "--matchmaker", "memory://x", "--topic", "t", "get", "--timeout", "banana"},
			want: []string{`--timeout "banana": want a duration: a number with a unit, such as 500ms, 5s or 1m30s`}},
		{args: []string{"call", "--matchmaker", "memory://x", "--topic", "t", "get"}, env: []string{"RELAY_TIMEOUT=banana"},
			want: []string{`--timeout from RELAY_TIMEOUT="banana": want a duration`}},
		{args: []string{"call", "--matchmaker", "memory://x", "--topic", "t", "get", "--timeout", "-1s"},
			want: []string{"--timeout -1s: want a positive duration"}},
		{args: []string{"serve", "--matchmaker", "memory://x", "--topic", "t", "--ttl", "10"}, want: []string{`--ttl "10": want a duration`}},
		{args: []string{"call", "--matchmaker", "memory://x", "--topic", "t", "--acks=maybe", "get"}, want: []string{`--acks "maybe": want true or false`}},
		{args: []string{"bench", "--n", "many"}, want: []string{`--n "many": want a whole number`}},
		// A matchmaker without a scheme gets a suggestion.
		{args: []string{"call", "--matchmaker", "127.0.0.1:16479", "--topic", "t", "get"},
			want: []string{`--matchmaker "127.0.0.1:16479" has no scheme: did you mean redis://127.0.0.1:16479?`}},
		{args: []string{"status", "--matchmaker", "localhost:6379"}, want: []string{"did you mean redis://localhost:6379?"}},
		{args: []string{"serve", "--matchmaker", "/etc/relay/hosts.json", "--topic", "t"}, want: []string{"did you mean file:///etc/relay/hosts.json?"}},
		{args: []string{"notify", "--matchmaker", "redis", "--topic", "t", "ev"}, want: []string{`--matchmaker "redis" has no scheme: want memory://NAME`}},
		// JSON that does not parse.
		{args: []string{"call", "--matchmaker", "memory://x", "--topic", "t", "echo", `{"a":`}, want: []string{`ARG '{"a":' is not valid JSON`}},
		{args: []string{"call", "--matchmaker", "memory://x", "--topic", "t", "echo", "@/nonexistent/arg.json"}, want: []string{"ARG @/nonexistent/arg.json: open /nonexistent/arg.json: no such file"}},
		{args: []string{"notify", "--matchmaker", "memory://x", "--topic", "t", "ev", "[1,"}, want: []string{"PAYLOAD '[1,' is not valid JSON"}},
		{args: []string{"listen", "--matchmaker", "memory://x"}, want: []string{"--topic is required"}},
		{args: []string{"proxy", "--matchmaker", "memory://x"}, want: []string{"one of --publisher or --router is required"}},
	} {
		r := runNodeWith(t, "", tc.env, tc.args...)
		if r.code != 2 {
			t.Errorf("node %q: exit %d, want 2 (%s)", tc.args, r.code, r)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("node %q: stderr lacks %q (%s)", tc.args, w, r)
			}
		}
	}
}

// A matchmaker URL with an unknown scheme fails with the matchmaker's
// error, exit 1.
func TestUnknownMatchmakerScheme(t *testing.T) {
	for _, args := range [][]string{
		{"serve", "--matchmaker", "bogus://127.0.0.1:6379", "--topic", "compute"},
		{"call", "--matchmaker", "bogus://127.0.0.1:6379", "--topic", "compute", "add", "1"},
		{"status", "--matchmaker", "bogus://127.0.0.1:6379"},
	} {
		r := runNode(t, args...)
		if r.code != 1 || !strings.Contains(r.stderr, `unknown scheme "bogus"`) || !strings.Contains(r.stderr, "--matchmaker") {
			t.Errorf("node %q: %s; want exit 1 naming --matchmaker and the unknown scheme", args, r)
		}
	}
}

// A port in use or an address that is not this host's fails serve and
// listen at once with one message naming the flags (--bind, --ports) and
// the fix, without a log of restarts.
func TestPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	inUse := []string{"cannot bind: port " + port + " (--ports " + port + "-" + port + ") on --bind 127.0.0.1 is in use",
		"Fix: stop what holds it, or give --ports a free port"}
	notHere := []string{"cannot bind: --bind 203.0.113.7 is not an address of this host",
		"Fix: give one of this host's addresses or interfaces (lo 127.0.0.1", "or 0.0.0.0 with --advertise"}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"serve", "--matchmaker", "memory://x", "--topic", "t", "--ports", port + "-" + port}, inUse},
		{[]string{"listen", "--matchmaker", "memory://x", "--topic", "t", "--ports", port + "-" + port}, inUse},
		{[]string{"serve", "--matchmaker", "memory://x", "--topic", "t", "--bind", "203.0.113.7"}, notHere},
		{[]string{"serve", "--matchmaker", "memory://x", "--topic", "t", "--bind", "nosuchif0"},
			[]string{"--bind nosuchif0 is neither an IP address nor an interface of this host", "Fix: "}},
		{[]string{"proxy", "--router", "--matchmaker", "memory://x", "--ports", port + "-" + port},
			[]string{"address already in use", "--bind (127.0.0.1 must be an address of this host)", "--ports (" + port + "-" + port + ")"}},
	} {
		args := tc.args
		r := runNode(t, args...)
		if r.code != 1 {
			t.Errorf("node %q: %s; want exit 1", args, r)
			continue
		}
		for _, want := range tc.want {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("node %q: stderr lacks %q: %s", args, want, r)
			}
		}
		for _, unwanted := range []string{"WithBindAddress", "WithPortRange", "level=WARN", "level=ERROR"} {
			if strings.Contains(r.stderr, unwanted) {
				t.Errorf("node %q: stderr has %q: %s", args, unwanted, r)
			}
		}
		if n := strings.Count(strings.TrimSpace(r.stderr), "\n"); n > 0 {
			t.Errorf("node %q: %d lines on stderr, want 1: %s", args, n+1, r)
		}
	}
}

// Flags may follow the positional arguments; "--" ends the flags; negative
// numbers are arguments.
func TestParseArgs(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		pos    []string
		server string
	}{
		{[]string{"get", "--server", "alpha"}, []string{"get"}, "alpha"},
		{[]string{"--server", "alpha", "add", "5"}, []string{"add", "5"}, "alpha"},
		{[]string{"add", "--server=beta", "5"}, []string{"add", "5"}, "beta"},
		{[]string{"add", "-5", "--server", "alpha"}, []string{"add", "-5"}, "alpha"},
		{[]string{"add", "--", "--server", "x"}, []string{"add", "--server", "x"}, ""},
		{[]string{"echo", "-"}, []string{"echo", "-"}, ""},
		{nil, nil, ""},
	} {
		fs := newFlagSet("call")
		server := fs.String("server", "", "")
		pos, help, err := parseArgs(fs, tc.args)
		if err != nil || help || !slices.Equal(pos, tc.pos) || *server != tc.server {
			t.Errorf("parseArgs(%q) = %q, %v, %v, server %q; want %q, server %q", tc.args, pos, help, err, *server, tc.pos, tc.server)
		}
	}
	fs := newFlagSet("call")
	if _, help, _ := parseArgs(fs, []string{"add", "--help"}); !help {
		t.Error("parseArgs(add --help): no help")
	}
}

// Errors of relay that name options name this command's flags instead;
// handler errors are left alone.
func TestInFlagTerms(t *testing.T) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.String("bind", "", "")
	fs.Bool("router-proxy", false, "")
	c := &cli{name: "serve", fs: fs}
	got := c.inFlagTerms(errString("relay: option WithRouterProxy: no router proxy; check WithBindAddress and WithPortRange"))
	if want := "relay: option --router-proxy: no router proxy; check --bind and WithPortRange"; got != want {
		t.Errorf("inFlagTerms = %q, want %q", got, want)
	}
}

type errString string

func (e errString) Error() string { return string(e) }

func TestRate(t *testing.T) {
	for in, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 1234567.4: "1,234,567"} {
		if got := rate(in); got != want {
			t.Errorf("rate(%v) = %q, want %q", in, got, want)
		}
	}
}
