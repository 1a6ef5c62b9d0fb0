package main

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/relay-dev/relay"
	"github.com/relay-dev/relay/internal/testredis"
)

// node status lists what live nodes registered in a real Redis, with the
// remaining TTL, as a table.
func TestStatusRedis(t *testing.T) {
	rs := testredis.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := relay.Start(ctx, relay.WithMatchmaker(rs.URL()), relay.WithHost("alpha"), relay.WithRegistrationTTL(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if _, err := n.Serve(relay.Target{Exchange: "nova", Topic: "compute"}); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runArgs(t, "status", "--matchmaker", rs.URL())
	if code != 0 {
		t.Fatalf("status: exit %d, stderr %q", code, errOut)
	}
	for _, re := range []string{
		`EXCHANGE\s+TOPIC\s+SERVER\s+ADDRESS\s+TTL`,
		`nova\s+compute\s+\(any\)\s+` + regexp.QuoteMeta(n.Endpoint()) + `\s+(19|20)(\.\d)?s`,
		`nova\s+compute\s+alpha\s+` + regexp.QuoteMeta(n.Endpoint()) + `\s+(19|20)(\.\d)?s`,
		`2 registrations`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("status output does not match %s:\n%s", re, out)
		}
	}
}

func TestStatusErrors(t *testing.T) {
	rs := testredis.Start(t)
	rs.Stop()
	code, _, errOut := runArgs(t, "status", "--matchmaker", rs.URL(), "--timeout", "2s")
	if code != 1 || !strings.Contains(errOut, rs.Addr()) {
		t.Errorf("status on a stopped Redis: exit %d, stderr %q; want exit 1 naming %s", code, errOut, rs.Addr())
	}
	if code, _, _ := runArgs(t, "status"); code != 2 {
		t.Errorf("status without --matchmaker: exit %d, want 2", code)
	}
}
