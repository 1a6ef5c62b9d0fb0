package e2e_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/relay-dev/relay"
	"github.com/relay-dev/relay/internal/testredis"
)

// With acks, a bare call whose server is killed (kill -9) while its
// handler runs is resent to the topic's other server and answered there
// before its deadline; the calls after the kill skip the dead server
// (its registration has not expired yet).
func TestFailoverKill9(t *testing.T) {
	checkLoopback(t)
	rs := testredis.Start(t)
	live, victim := hosts[0], hosts[2]
	procs := map[string]*proc{}
	for _, h := range []string{live, victim} {
		procs[h] = launchServe(t, rs.URL(), h, h)
	}
	for _, p := range procs {
		p.waitRegistered(rs.URL())
	}
	client, closeClient := startNode(t, rs.URL(), relay.WithAcks(true))
	defer closeClient()

	// Two sleeps at once: one on each server (round-robin).
	const deadline = 8 * time.Second
	type result struct {
		err  error
		took time.Duration
	}
	results := make(chan result, 2)
	for range 2 {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			start := time.Now()
			err := client.Call(ctx, target(""), "sleep", 2000, nil)
			results <- result{err, time.Since(start)}
		}()
	}
	// Both run once a resend of each got its "taken, running" ACK.
	waitFor(t, 5*time.Second, func() error {
		if st := client.Stats(); st.AcksReceived < 2 {
			return fmt.Errorf("%d ACKs received, want one per running call (2)", st.AcksReceived)
		}
		return nil
	})
	procs[victim].kill9()
	for range 2 {
		r := <-results
		if r.err != nil {
			t.Errorf("bare sleep with acks across the kill of %s: %v after %v (deadline %v)", victim, r.err, r.took.Round(time.Millisecond), deadline)
		}
	}
	if st := client.Stats(); st.Failovers < 1 {
		t.Errorf("%d failovers after the kill of a server running a call, want 1", st.Failovers)
	}
	for i := range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		var st struct {
			Host string `msgpack:"host"`
		}
		err := client.Call(ctx, target(""), "get", nil, &st)
		cancel()
		if err != nil || st.Host != live {
			t.Errorf("bare get %d after the kill: host %q, %v; want %s", i, st.Host, err, live)
		}
	}
}
