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
	r := runNode(t, "status", "--matchmaker", rs.URL())
	if r.code != 0 {
		t.Fatalf("status: %s", r)
	}
	for _, re := range []string{
		`EXCHANGE\s+TOPIC\s+SERVER\s+ADDRESS\s+TTL`,
		`nova\s+compute\s+\(any\)\s+` + regexp.QuoteMeta(n.Endpoint()) + `\s+(1\d|20)(\.\d)?s`,
		`nova\s+compute\s+alpha\s+` + regexp.QuoteMeta(n.Endpoint()) + `\s+(1\d|20)(\.\d)?s`,
		`2 registrations`,
	} {
		if !regexp.MustCompile(re).MatchString(r.stdout) {
			t.Errorf("status output does not match %s:\n%s", re, r.stdout)
		}
	}
}

func TestStatusErrors(t *testing.T) {
	rs := testredis.Start(t)
	rs.Stop()
	r := runNode(t, "status", "--matchmaker", rs.URL(), "--timeout", "2s")
	if r.code != 1 || !strings.Contains(r.stderr, rs.Addr()) {
		t.Errorf("status on a stopped Redis: %s; want exit 1 naming %s", r, rs.Addr())
	}
	expect(t, runNode(t, "status"), 2, "--matchmaker is required")
}
