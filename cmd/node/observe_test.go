package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/relay-dev/relay"
	"github.com/relay-dev/relay/internal/testredis"
	"github.com/relay-dev/relay/internal/testutil"
)

// boundAddr waits for p to log the address it serves HTTP on (--http with
// port 0) and returns it.
func boundAddr(t *testing.T, p *proc, msg string) string {
	t.Helper()
	p.waitLog(msg)
	m := regexp.MustCompile(`(?:addr=|url=http://|"addr":"|"url":"http://)([0-9.]+:[0-9]+)`).FindStringSubmatch(p.stderr.String()[strings.Index(p.stderr.String(), msg):])
	if m == nil {
		t.Fatalf("no address after %q in:\n%s", msg, p.stderr)
	}
	return m[1]
}

// get fetches url and returns the status code and body.
func get(url string) (int, string, error) {
	res, err := http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, string(b), err
}

// metricValue returns the value of the sample of name whose labels
// include every one of labels ("k=\"v\""), summed over the samples that
// match.
func metricValue(text, name string, labels ...string) (float64, bool) {
	sum, found := 0.0, false
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if !ok {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum, found = sum+v, true
		}
	}
	return sum, found
}

// node serve --http serves /healthz, /metrics whose counters move with
// traffic (and pass promtool's checks), and /debug/pprof; its log is
// JSON with --log-format json; node info and node status show what the
// node says of itself.
func TestServeObservable(t *testing.T) {
	rs := testredis.Start(t)
	srv := spawn(t, "serve", "--matchmaker", rs.URL(), "--host", "alpha", "--topic", "compute",
		"--http", "127.0.0.1:0", "--log-format", "json", "--log-level", "debug")
	addr := boundAddr(t, srv, "http serving")
	base := "http://" + addr
	testutil.WaitFor(t, 20*time.Second, func() error {
		code, body, err := get(base + "/healthz")
		if err != nil || code != 200 || strings.TrimSpace(body) != "ok" {
			return fmt.Errorf("/healthz: %d %q %v", code, body, err)
		}
		return nil
	})
	if !strings.HasPrefix(strings.TrimSpace(srv.stderr.String()), `{"time":`) {
		t.Errorf("--log-format json: stderr is not JSON lines:\n%s", srv.stderr)
	}

	_, before, err := get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	okAdd := []string{`side="server"`, `kind="call"`, `topic="compute"`, `method="add"`, `outcome="ok"`}
	v0, _ := metricValue(before, "relay_messages_total", okAdd...)
	for i := range 3 {
		expect(t, runNode(t, "call", "--matchmaker", rs.URL(), "--topic", "compute", "add", strconv.Itoa(i)), 0)
	}
	expect(t, runNode(t, "call", "--matchmaker", rs.URL(), "--topic", "compute", "subtract", "1000"), 1)
	_, after, err := get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if v1, _ := metricValue(after, "relay_messages_total", okAdd...); v1-v0 != 3 {
		t.Errorf("relay_messages_total of add went from %v to %v, want +3", v0, v1)
	}
	for _, m := range []struct {
		name   string
		labels []string
	}{
		{"relay_call_duration_seconds_count", []string{`side="server"`, `method="add"`}},
		{"relay_messages_total", []string{`method="subtract"`, `outcome="NegativeError"`}},
		{"relay_matchmaker_operations_total", []string{`node="alpha"`, `op="register"`}},
		{"relay_pending_calls", []string{`node="alpha"`}},
		{"relay_handler_queue_depth", []string{`node="alpha"`}},
		{"relay_actor_restarts_total", []string{`actor="router"`}},
		{"relay_dropped_messages_total", []string{`reason="malformed"`}},
		{"relay_node_info", []string{`version="` + relay.Version + `"`}},
		{"go_goroutines", nil},
	} {
		if _, ok := metricValue(after, m.name, m.labels...); !ok {
			t.Errorf("/metrics has no %s with %v", m.name, m.labels)
		}
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not found (Debian package prometheus): run `make deps`")
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(after)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
	if code, body, err := get(base + "/debug/pprof/"); err != nil || code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("/debug/pprof/: %d %v", code, err)
	}

	r := runNode(t, "info", "--matchmaker", rs.URL(), "--server", "alpha")
	var info relay.Info
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &info) != nil {
		t.Fatalf("node info: %s", r)
	}
	if info.Host != "alpha" || len(info.Servers) != 1 || info.Servers[0].Topic != "compute" ||
		!strings.Contains(strings.Join(info.Servers[0].Methods, ","), "add") || info.Extra["http"] != addr || info.Uptime <= 0 {
		t.Errorf("node info: %+v", info)
	}
	expect(t, runNode(t, "info", "--matchmaker", rs.URL(), "--server", "nobody"), 1, `--server "nobody": no such server`, "alpha")
	r = runNode(t, "status", "--matchmaker", rs.URL())
	if r.code != 0 || !regexp.MustCompile(`compute\s+alpha\s+\S+\s+\S+\s+alpha relay `+regexp.QuoteMeta(relay.Version)+` pid \d+ up`).MatchString(r.stdout) {
		t.Errorf("status does not show the node's info:\n%s", r)
	}
}

// Bad logging and --http flags are usage errors that name the flag.
func TestObserveFlagErrors(t *testing.T) {
	expect(t, runNode(t, "status", "--matchmaker", "memory://x", "--log-level", "loud"), 2, `--log-level "loud": want debug, info, warn or error`)
	expect(t, runNode(t, "call", "--matchmaker", "memory://x", "--topic", "t", "--log-format", "xml", "m"), 2, `--log-format "xml": want text or json`)
	expect(t, runNode(t, "serve", "--matchmaker", "memory://x", "--topic", "t", "--http", "nowhere"), 2, `--http "nowhere": want HOST:PORT`)
	expect(t, runNode(t, "dashboard", "--matchmaker", "memory://x"), 2, "--http is required")
}

// chromium returns the path of the headless browser the dashboard test
// drives, failing with a hint when it is missing.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium not found (Debian package chromium): run `make deps`")
	return ""
}

// node dashboard, in a real headless browser: the page lists the servers
// of a running cluster, and a server disappears once it is killed (its
// registrations expire).
func TestDashboardInBrowser(t *testing.T) {
	browser := chromium(t)
	rs := testredis.Start(t)
	alpha := spawn(t, "serve", "--matchmaker", rs.URL(), "--host", "alpha", "--topic", "compute", "--ttl", "2s")
	beta := spawn(t, "serve", "--matchmaker", rs.URL(), "--host", "beta", "--topic", "compute", "--ttl", "2s")
	listener := spawn(t, "listen", "--matchmaker", rs.URL(), "--topic", "billing", "--pool", "workers")
	alpha.waitLog("serving demo endpoint")
	beta.waitLog("serving demo endpoint")
	_ = listener
	dash := spawn(t, "dashboard", "--matchmaker", rs.URL(), "--http", "127.0.0.1:0")
	url := "http://" + boundAddr(t, dash, "dashboard running") + "/"
	for range 5 {
		expect(t, runNode(t, "call", "--matchmaker", rs.URL(), "--topic", "compute", "add", "1"), 0)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.WindowSize(1400, 800))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	// The browser's protocol is newer than chromedp's: events it cannot
	// decode are not errors of the page.
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithErrorf(func(string, ...any) {}))
	defer cancelBrowser()
	ctx, cancel := context.WithTimeout(bctx, 60*time.Second)
	defer cancel()
	row := func(name string) string { return `tr.server[data-name="` + name + `"]` }
	if err := chromedp.Run(ctx, chromedp.Navigate(url),
		chromedp.WaitVisible(row("alpha"), chromedp.ByQuery),
		chromedp.WaitVisible(row("beta"), chromedp.ByQuery)); err != nil {
		t.Fatalf("dashboard at %s: the servers alpha and beta never showed: %v", url, err)
	}
	var text string
	testutil.WaitFor(t, 20*time.Second, func() error {
		if err := chromedp.Run(ctx, chromedp.Text("body", &text, chromedp.ByQuery)); err != nil {
			return err
		}
		for _, want := range []string{"compute", "billing.info", "workers", "2 servers (2 answering)"} {
			if !strings.Contains(text, want) {
				return fmt.Errorf("page lacks %q:\n%s", want, text)
			}
		}
		return nil
	})
	if path := os.Getenv("RELAY_DASHBOARD_SCREENSHOT"); path != "" {
		// Regenerate docs/dashboard.png: RELAY_DASHBOARD_SCREENSHOT=$PWD/docs/dashboard.png
		for range 10 { // some traffic for the rates
			runNode(t, "call", "--matchmaker", rs.URL(), "--topic", "compute", "add", "1")
		}
		var png []byte
		if err := chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	if err := beta.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 30*time.Second, func() error {
		var gone bool
		js := `document.querySelector('` + row("beta") + `') === null && document.querySelector('` + row("alpha") + `') !== null`
		if err := chromedp.Run(ctx, chromedp.Evaluate(js, &gone)); err != nil {
			return err
		}
		if !gone {
			return fmt.Errorf("beta still listed after it was killed")
		}
		return nil
	})
}
