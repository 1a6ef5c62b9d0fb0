package bench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/relay-dev/relay"
	"github.com/relay-dev/relay/proxy"
)

// ConnCount is how many TCP connections N nodes (half servers, half
// clients, every client calling every server) open, directly and through k
// router proxies.
type ConnCount struct {
	Nodes   int `json:"nodes"`
	Proxies int `json:"proxies"`
	Direct  int `json:"direct"` // ≈ clients × servers
	Routed  int `json:"routed"` // ≈ k × N
}

// Connections measures ConnCount for nodes nodes and proxies proxies,
// counting ESTABLISHED entries of /proc/net/tcp towards the experiment's
// listening ports (one per connection: the connecting end's).
func Connections(ctx context.Context, nodes, proxies int) (ConnCount, error) {
	c := ConnCount{Nodes: nodes, Proxies: proxies}
	var err error
	if c.Direct, err = connections(ctx, nodes, 0); err != nil {
		return c, err
	}
	c.Routed, err = connections(ctx, nodes, proxies)
	return c, err
}

func connections(ctx context.Context, nodes, proxies int) (int, error) {
	mm := "memory://bench-conns-" + randomHex()
	ports := map[int]bool{}
	opts := []relay.Option{relay.WithMatchmaker(mm)}
	if proxies > 0 {
		opts = append(opts, relay.WithRouterProxy(true))
		for i := 0; i < proxies; i++ {
			p, err := proxy.StartRouter(ctx, proxy.WithMatchmaker(mm))
			if err != nil {
				return 0, err
			}
			defer p.Close()
			for _, ep := range strings.Split(p.Endpoints(), "|") {
				ports[port(ep)] = true
			}
		}
	}
	servers, clients := nodes/2, nodes-nodes/2
	var names []string
	for i := 0; i < servers; i++ {
		name := fmt.Sprintf("srv%d", i)
		n, err := relay.Start(ctx, append(opts, relay.WithHost(name))...)
		if err != nil {
			return 0, err
		}
		defer n.Close()
		s, err := n.Serve(relay.Target{Topic: "conns"})
		if err != nil {
			return 0, err
		}
		s.Handle("ping", func(context.Context, *relay.Request) (any, error) { return nil, nil })
		ports[port(n.Endpoint())] = true
		names = append(names, name)
	}
	for i := 0; i < clients; i++ {
		n, err := relay.Start(ctx, append(opts, relay.WithHost(fmt.Sprintf("cli%d", i)))...)
		if err != nil {
			return 0, err
		}
		defer n.Close()
		for _, name := range names {
			// Enough calls to go through every proxy (round-robin).
			for j := 0; j < max(proxies, 1); j++ {
				if err := callRetrying(ctx, n, relay.Target{Topic: "conns", Server: name}); err != nil {
					return 0, fmt.Errorf("bench: connections: call %s: %w", name, err)
				}
			}
		}
	}
	return countEstablished(ports)
}

// callRetrying calls ping until it works (a server's HELLO takes up to a
// second to reach the proxies).
func callRetrying(ctx context.Context, n *relay.Node, t relay.Target) error {
	var err error
	for i := 0; i < 50; i++ {
		if err = n.Call(ctx, t, "ping", nil, nil); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timeAfter(50):
		}
	}
	return err
}

func port(endpoint string) int {
	i := strings.LastIndexByte(endpoint, ':')
	p, _ := strconv.Atoi(endpoint[i+1:])
	return p
}

// countEstablished counts ESTABLISHED sockets whose remote port is one of
// ports, in /proc/net/tcp and /proc/net/tcp6.
func countEstablished(ports map[int]bool) (int, error) {
	total := 0
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		fh, err := os.Open(f)
		if err != nil {
			if f == "/proc/net/tcp6" {
				continue
			}
			return 0, fmt.Errorf("bench: connections: %w", err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 4 || fields[3] != "01" {
				continue
			}
			remote := fields[2]
			i := strings.LastIndexByte(remote, ':')
			p, err := strconv.ParseInt(remote[i+1:], 16, 32)
			if err == nil && ports[int(p)] {
				total++
			}
		}
		fh.Close()
	}
	return total, nil
}

func timeAfter(ms int) <-chan time.Time { return time.After(time.Duration(ms) * time.Millisecond) }
