package chaos

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/relay-dev/relay"
	"github.com/relay-dev/relay/internal/testutil"
)

// probe waits until a directed call reaches every server, a notification
// reaches one, and (but in router mode) a fanout reaches all. Probes carry
// keys that the accounting leaves out.
func (h *harness) probe(ctx context.Context) error {
	control := h.clients[clientControl]
	seq := 0
	send := func(f func(ctx context.Context, op Op) error) (string, error) {
		seq++
		key := fmt.Sprintf("%s%d", probePrefix, seq)
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		return key, f(cctx, Op{Key: key})
	}
	for _, m := range h.servers {
		err := testutil.Poll(startTimeout, func() error {
			_, err := send(func(ctx context.Context, op Op) error {
				return control.Call(ctx, relay.Target{Topic: ServeTopic, Server: m.name}, MethodApply, op, nil)
			})
			return err
		})
		if err != nil {
			return fmt.Errorf("chaos: server %s unreachable: %w", m.name, err)
		}
	}
	// Notifications and fanouts: until one probe got through (to every
	// server, for fanouts).
	probeUntil := func(what string, f func(ctx context.Context, op Op) error, want int) error {
		var keys []string
		err := testutil.Poll(startTimeout, func() error {
			key, err := send(f)
			if err != nil {
				return err
			}
			keys = append(keys, key)
			return testutil.Poll(time.Second, func() error {
				got := h.appliedProbes()
				for _, k := range keys {
					if got[k] >= want {
						return nil
					}
				}
				return fmt.Errorf("no %s probe applied %d times yet", what, want)
			})
		})
		if err != nil {
			return fmt.Errorf("chaos: %s: %w", what, err)
		}
		return nil
	}
	err := probeUntil("notification", func(ctx context.Context, op Op) error {
		return h.clients[clientNotify].Notify(ctx, relay.Notification{Topic: NotifyTopic, EventType: MethodApply, Payload: op})
	}, 1)
	if err != nil || h.cfg.Mode == ModeRouter {
		return err
	}
	return probeUntil("fanout", func(ctx context.Context, op Op) error {
		return h.clients[clientFanout].Cast(ctx, relay.Target{Topic: ServeTopic, Fanout: true}, MethodApply, op)
	}, len(h.servers))
}

// probePrefix starts the keys of probes.
const probePrefix = "probe/"

// appliedProbes counts, per probe key, the servers whose journals applied
// it so far.
func (h *harness) appliedProbes() map[string]int {
	n := map[string]int{}
	for _, m := range h.servers {
		seen := map[string]bool{}
		for _, inc := range m.snapshot() {
			recs, _ := readJournal(inc.journal)
			for _, r := range recs {
				if r.kind == recApplied && strings.HasPrefix(r.key, probePrefix) && !seen[r.key] {
					seen[r.key] = true
					n[r.key]++
				}
			}
		}
	}
	return n
}
