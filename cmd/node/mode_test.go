package main

import (
	"testing"

	"github.com/relay-dev/relay/internal/testredis"
)

// A server in router-proxy mode called directly, or a direct server called
// with --router-proxy, fails at once: exit 1, saying that the modes differ
// and which flag to change.
func TestModeMismatch(t *testing.T) {
	rs := testredis.Start(t)
	mm := rs.URL()
	spawn(t, "proxy", "--router", "--matchmaker", mm).waitLog("proxy running")
	spawn(t, "serve", "--matchmaker", mm, "--host", "gamma", "--topic", "proxied", "--router-proxy").waitLog("serving demo endpoint")
	spawn(t, "serve", "--matchmaker", mm, "--host", "delta", "--topic", "direct").waitLog("serving demo endpoint")

	for _, args := range [][]string{
		{"call", "--matchmaker", mm, "--topic", "proxied", "get"},
		{"call", "--matchmaker", mm, "--topic", "proxied", "get", "--server", "gamma"},
		{"cast", "--matchmaker", mm, "--topic", "proxied", "add", "1"},
	} {
		expect(t, runNode(t, args...), 1, "servers and this node run in different modes",
			"is served through router proxies (registered as @gamma)",
			"turn --router-proxy on for this node (with a router proxy running: node proxy --router), or off for its servers")
	}
	expect(t, runNode(t, "call", "--matchmaker", mm, "--topic", "direct", "get", "--router-proxy"), 1,
		"servers and this node run in different modes", "direct is served directly (registered at tcp://",
		"turn --router-proxy off for this node, or on for its servers")
}
