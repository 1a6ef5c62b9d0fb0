package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relay-dev/relay/internal/testredis"
)

// node listen prints what node notify publishes, one JSON line each, and
// exits after --count.
func TestNotifyListen(t *testing.T) {
	rs := testredis.Start(t)
	l := spawn(t, "listen", "--matchmaker", rs.URL(), "--topic", "billing", "--pool", "workers", "--count", "2")
	l.waitLog("msg=listening")

	r := runNode(t, "notify", "--matchmaker", rs.URL(), "--topic", "billing", "invoice.paid", `{"id":7}`, "--publisher", "shop")
	if r.code != 0 || r.stdout != "" {
		t.Fatalf("notify: %s", r)
	}
	path := filepath.Join(t.TempDir(), "payload.json")
	if err := os.WriteFile(path, []byte(`["disk", 99.5]`), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := runNode(t, "notify", "--matchmaker", rs.URL(), "--topic", "billing", "--priority", "error", "disk.full", "@"+path); r.code != 0 {
		t.Fatalf("notify @file: %s", r)
	}
	if code := l.wait(); code != 0 {
		t.Fatalf("listen exited %d", code)
	}
	lines := strings.Split(strings.TrimSpace(l.stdout.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("listen printed %d lines, want 2:\n%s", len(lines), l.stdout)
	}
	got := map[string]delivery{}
	for _, line := range lines {
		var d delivery
		if err := json.Unmarshal([]byte(line), &d); err != nil {
			t.Fatalf("line %q is not JSON: %v", line, err)
		}
		if len(d.ID) != 32 {
			t.Errorf("id %q: want 32 hex digits", d.ID)
		}
		if _, err := time.Parse(time.RFC3339Nano, d.Timestamp); err != nil {
			t.Errorf("timestamp %q: %v", d.Timestamp, err)
		}
		got[d.EventType] = d
	}
	paid, full := got["invoice.paid"], got["disk.full"]
	if paid.Topic != "billing" || paid.Priority != "info" || paid.PublisherID != "shop" || !jsonEqual(paid.Payload, `{"id":7}`) {
		t.Errorf("invoice.paid delivered as %+v", paid)
	}
	if full.Topic != "billing" || full.Priority != "error" || !jsonEqual(full.Payload, `["disk",99.5]`) {
		t.Errorf("disk.full delivered as %+v", full)
	}
}

// Without a listener, notify fails; a bad priority is named with the ones
// there are.
func TestNotifyErrors(t *testing.T) {
	rs := testredis.Start(t)
	expect(t, runNode(t, "notify", "--matchmaker", rs.URL(), "--topic", "nobody", "ev"), 1, "no listener for notifications nobody.info")
	expect(t, runNode(t, "notify", "--matchmaker", rs.URL(), "--topic", "t", "--priority", "urgent", "ev"), 1,
		`priority "urgent" is not one of [audit debug info warn error critical sample]`)
}

// jsonEqual reports whether v, decoded from JSON, equals the JSON want.
func jsonEqual(v any, want string) bool {
	a, err1 := json.Marshal(v)
	var w any
	err2 := json.Unmarshal([]byte(want), &w)
	b, err3 := json.Marshal(w)
	return err1 == nil && err2 == nil && err3 == nil && string(a) == string(b)
}
