// Package cluster reads what a relay cluster is now: from a matchmaker's
// registrations, its topics, servers, listener pools, router and
// publisher proxies; from each server node, its Info ($relay.info). `node
// info`, `node status` and the dashboard are built on it.
//
//	regs, _ := lister.List(ctx)
//	view := cluster.Collect(ctx, node, regs, time.Second)
//	for _, s := range view.Nodes { fmt.Println(s.Name, s.Addr, s.Err) }
//
// Collect is safe for concurrent use; a View is a snapshot, not updated.
package cluster

import (
	"context"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/relay-dev/relay"
	"github.com/relay-dev/relay/matchmaker"
)

// View is the cluster at one moment.
type View struct {
	At              time.Time        `json:"at"`
	Topics          []Topic          `json:"topics"`
	Nodes           []Node           `json:"nodes"`
	Pools           []Pool           `json:"pools"`
	Routers         []string         `json:"routers"`          // router proxies: "FRONT|BACK"
	Publishers      []string         `json:"publishers"`       // central publisher proxies: "FRONT|BACK|ack"
	LocalPublishers []LocalPublisher `json:"local_publishers"` // per-host publisher proxies
}

// Topic is a served topic and the names of its servers.
type Topic struct {
	Exchange string   `json:"exchange,omitempty"`
	Topic    string   `json:"topic"`
	Servers  []string `json:"servers"`
}

// Node is one server node: a server name at an address, what it registered
// and, when it answered, its Info.
type Node struct {
	Name    string      `json:"name"`    // the server name of its directed registrations
	Addr    string      `json:"addr"`    // its endpoint, or "@NAME" in router-proxy mode
	Targets []string    `json:"targets"` // "exchange/topic"
	Expires time.Time   `json:"expires"` // the earliest expiry of its registrations (zero: static)
	Info    *relay.Info `json:"info,omitempty"`
	Err     string      `json:"error,omitempty"` // why Info is missing
}

// Pool is a listener pool of a notification topic ("T.priority").
type Pool struct {
	Topic   string   `json:"topic"`
	Pool    string   `json:"pool"`
	Members []string `json:"members"` // listener endpoints
}

// LocalPublisher is a host's local publisher proxy.
type LocalPublisher struct {
	Host string `json:"host"`
	Addr string `json:"addr"`
}

// The matchmaker exchanges relay uses for itself (docs/PROTOCOL.md §10).
const (
	notifyExchange = "$notify"
	relayExchange  = "$relay"
)

// Collect builds the View of regs, and asks each server node for its Info
// through n (a node on the same matchmaker), in parallel, each within
// timeout. A node that does not answer keeps its Err.
func Collect(ctx context.Context, n *relay.Node, regs []matchmaker.Registration, timeout time.Duration) *View {
	v := Read(regs)
	var wg sync.WaitGroup
	for i := range v.Nodes {
		node := &v.Nodes[i]
		if len(node.Targets) == 0 {
			continue
		}
		wg.Go(func() {
			ex, topic, _ := strings.Cut(node.Targets[0], "/")
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			in, err := n.NodeInfo(cctx, relay.Target{Exchange: ex, Topic: topic, Server: node.Name})
			if err != nil {
				node.Err = err.Error()
				return
			}
			node.Info = &in
		})
	}
	wg.Wait()
	return v
}

// Read builds the View of regs alone, without asking any node.
func Read(regs []matchmaker.Registration) *View {
	v := &View{At: time.Now()}
	type nodeKey struct{ name, addr string }
	nodes := map[nodeKey]*Node{}
	topics := map[[2]string]*Topic{}
	pools := map[[2]string]*Pool{}
	directed := map[[3]string]bool{} // exchange, topic, addr with a directed registration
	for _, r := range regs {
		if r.Key.Server != "" {
			directed[[3]string{r.Key.Exchange, r.Key.Topic, r.Addr}] = true
		}
	}
	addNode := func(name string, r matchmaker.Registration) {
		k := nodeKey{name, r.Addr}
		nd := nodes[k]
		if nd == nil {
			nd = &Node{Name: name, Addr: r.Addr, Expires: r.Expires}
			nodes[k] = nd
		}
		target := r.Key.Exchange + "/" + r.Key.Topic
		if !slices.Contains(nd.Targets, target) {
			nd.Targets = append(nd.Targets, target)
		}
		if !r.Expires.IsZero() && (nd.Expires.IsZero() || r.Expires.Before(nd.Expires)) {
			nd.Expires = r.Expires
		}
		tk := [2]string{r.Key.Exchange, r.Key.Topic}
		t := topics[tk]
		if t == nil {
			t = &Topic{Exchange: r.Key.Exchange, Topic: r.Key.Topic}
			topics[tk] = t
		}
		if !slices.Contains(t.Servers, name) {
			t.Servers = append(t.Servers, name)
		}
	}
	for _, r := range regs {
		switch {
		case r.Key.Exchange == notifyExchange:
			pool, addr, _ := strings.Cut(r.Addr, "|")
			pk := [2]string{r.Key.Topic, pool}
			p := pools[pk]
			if p == nil {
				p = &Pool{Topic: r.Key.Topic, Pool: pool}
				pools[pk] = p
			}
			p.Members = append(p.Members, addr)
		case r.Key.Exchange == relayExchange && r.Key.Topic == "routers":
			v.Routers = append(v.Routers, r.Addr)
		case r.Key.Exchange == relayExchange && r.Key.Topic == "publishers":
			v.Publishers = append(v.Publishers, r.Addr)
		case r.Key.Exchange == relayExchange && r.Key.Topic == "local-publishers":
			v.LocalPublishers = append(v.LocalPublishers, LocalPublisher{Host: r.Key.Server, Addr: r.Addr})
		case r.Key.Server != "":
			addNode(r.Key.Server, r)
		case !directed[[3]string{r.Key.Exchange, r.Key.Topic, r.Addr}]:
			// A static hosts file lists bare entries only: a directed
			// target names the entry's host (docs/PROTOCOL.md §10.1).
			if host, _, err := net.SplitHostPort(r.Addr); err == nil && !strings.Contains(r.Addr, "://") {
				addNode(host, r)
			}
		}
	}
	for _, nd := range nodes {
		v.Nodes = append(v.Nodes, *nd)
	}
	sort.Slice(v.Nodes, func(i, j int) bool {
		a, b := v.Nodes[i], v.Nodes[j]
		return a.Name < b.Name || a.Name == b.Name && a.Addr < b.Addr
	})
	for _, t := range topics {
		slices.Sort(t.Servers)
		v.Topics = append(v.Topics, *t)
	}
	sort.Slice(v.Topics, func(i, j int) bool {
		a, b := v.Topics[i], v.Topics[j]
		return a.Exchange+"/"+a.Topic < b.Exchange+"/"+b.Topic
	})
	for _, p := range pools {
		slices.Sort(p.Members)
		v.Pools = append(v.Pools, *p)
	}
	sort.Slice(v.Pools, func(i, j int) bool {
		a, b := v.Pools[i], v.Pools[j]
		return a.Topic+"|"+a.Pool < b.Topic+"|"+b.Pool
	})
	slices.Sort(v.Routers)
	slices.Sort(v.Publishers)
	return v
}

// NodeAt returns the node of v whose Addr is addr, or nil.
func (v *View) NodeAt(addr string) *Node {
	for i := range v.Nodes {
		if v.Nodes[i].Addr == addr {
			return &v.Nodes[i]
		}
	}
	return nil
}
