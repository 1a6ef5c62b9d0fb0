package relay_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/relay-dev/relay"
)

// A server in router-proxy mode called directly, and a direct server
// called through router proxies, fail at once with ErrModeMismatch naming
// the option to change, not with a socket error or a timeout.
func TestModeMismatch(t *testing.T) {
	mm := newMatchmaker(t)
	startRouterProxy(t, mm)
	routed := newNode(t, mm, "routed", relay.WithRouterProxy(true))
	if _, err := routed.Serve(relay.Target{Topic: "proxied"}); err != nil {
		t.Fatal(err)
	}
	direct := newNode(t, mm, "direct")
	if _, err := direct.Serve(relay.Target{Topic: "direct"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		caller *relay.Node
		target relay.Target
		want   []string
	}{
		{direct, relay.Target{Topic: "proxied"}, []string{"served through router proxies (registered as @routed)", "turn WithRouterProxy on for this node"}},
		{direct, relay.Target{Topic: "proxied", Server: "routed"}, []string{"@routed", "turn WithRouterProxy on"}},
		{routed, relay.Target{Topic: "direct"}, []string{"served directly (registered at tcp://", "turn WithRouterProxy off for this node"}},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := tc.caller.Call(ctx, tc.target, "get", nil, nil)
		cerr := tc.caller.Cast(ctx, tc.target, "get", nil)
		cancel()
		if !errors.Is(err, relay.ErrModeMismatch) || !errors.Is(cerr, relay.ErrModeMismatch) {
			t.Errorf("%s: call = %v, cast = %v; want ErrModeMismatch", tc.target, err, cerr)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q lacks %q", tc.target, err, w)
			}
		}
	}
}
