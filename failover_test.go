package relay_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/relay-dev/relay"
	"github.com/relay-dev/relay/internal/demo"
)

// With acks, a bare call routed to a dead entry of a hosts file (nothing
// listens there) is resent to the topic's live server instead of waiting
// out its deadline, and later calls skip the dead entry (a suspect); a
// directed call to the dead entry stays there and times out.
func TestFailoverDeadEntry(t *testing.T) {
	live, dead := freePort(t), freePort(t)
	path := filepath.Join(t.TempDir(), "hosts.json")
	hosts := fmt.Sprintf(`{"compute": ["127.0.0.1:%d", "localhost:%d"]}`, live, dead)
	if err := os.WriteFile(path, []byte(hosts), 0o644); err != nil {
		t.Fatal(err)
	}
	mm := "file://" + path
	server := newNode(t, mm, "127.0.0.1", relay.WithPortRange(live, live))
	s, err := server.Serve(compute)
	if err != nil {
		t.Fatal(err)
	}
	ep := &demo.Endpoint{Host: "127.0.0.1"}
	ep.Register(s)

	client := newNode(t, mm, "client", relay.WithAcks(true))
	const perCall = 3 * time.Second
	for i := range 6 {
		ctx, cancel := context.WithTimeout(context.Background(), perCall)
		start := time.Now()
		err := client.Call(ctx, compute, "add", 1, nil)
		cancel()
		if err != nil {
			t.Fatalf("bare call %d with acks, one of two entries dead: %v after %v", i, err, time.Since(start).Round(time.Millisecond))
		}
	}
	if got := ep.State().Int; got != 6 {
		t.Errorf("the live server added %d, want 6 (each call once)", got)
	}
	if st := client.Stats(); st.Failovers != 1 {
		t.Errorf("%d failovers, want 1 (the first call routed to the dead entry; later ones skip it)", st.Failovers)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := client.Call(ctx, relay.Target{Topic: "compute", Server: "localhost"}, "add", 1, nil); err == nil {
		t.Error("a directed call to the dead entry succeeded")
	}
}
