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
	b := &builder{v: &View{At: time.Now()}, nodes: map[nodeKey]*Node{}, topics: map[[2]string]*Topic{},
		pools: map[[2]string]*Pool{}, directed: map[[3]string]bool{}}
	for _, r := range regs {
		if r.Key.Server != "" {
			b.directed[[3]string{r.Key.Exchange, r.Key.Topic, r.Addr}] = true
		}
	}
	for _, r := range regs {
		b.add(r)
	}
	return b.view()
}

// nodeKey tells nodes apart: a name at an address.
type nodeKey struct{ name, addr string }

// builder gathers registrations into a View.
type builder struct {
	v        *View
	nodes    map[nodeKey]*Node
	topics   map[[2]string]*Topic
	pools    map[[2]string]*Pool
	directed map[[3]string]bool // exchange, topic, addr with a directed registration
}

// add files one registration under what it registers.
func (b *builder) add(r matchmaker.Registration) {
	v := b.v
	switch {
	case r.Key.Exchange == notifyExchange:
		pool, addr, _ := strings.Cut(r.Addr, "|")
		pk := [2]string{r.Key.Topic, pool}
		p := b.pools[pk]
		if p == nil {
			p = &Pool{Topic: r.Key.Topic, Pool: pool}
			b.pools[pk] = p
		}
		p.Members = append(p.Members, addr)
	case r.Key.Exchange == relayExchange && r.Key.Topic == "routers":
		v.Routers = append(v.Routers, r.Addr)
	case r.Key.Exchange == relayExchange && r.Key.Topic == "publishers":
		v.Publishers = append(v.Publishers, r.Addr)
	case r.Key.Exchange == relayExchange && r.Key.Topic == "local-publishers":
		v.LocalPublishers = append(v.LocalPublishers, LocalPublisher{Host: r.Key.Server, Addr: r.Addr})
	case r.Key.Server != "":
		b.addNode(r.Key.Server, r)
	case !b.directed[[3]string{r.Key.Exchange, r.Key.Topic, r.Addr}]:
		// A static hosts file lists bare entries only: a directed
		// target names the entry's host (docs/PROTOCOL.md §10.1).
		if host, _, err := net.SplitHostPort(r.Addr); err == nil && !strings.Contains(r.Addr, "://") {
			b.addNode(host, r)
		}
	}
}

// addNode files r as a registration of the server node name.
func (b *builder) addNode(name string, r matchmaker.Registration) {
	k := nodeKey{name, r.Addr}
	nd := b.nodes[k]
	if nd == nil {
		nd = &Node{Name: name, Addr: r.Addr, Expires: r.Expires}
		b.nodes[k] = nd
	}
	target := r.Key.Exchange + "/" + r.Key.Topic
	if !slices.Contains(nd.Targets, target) {
		nd.Targets = append(nd.Targets, target)
	}
	if !r.Expires.IsZero() && (nd.Expires.IsZero() || r.Expires.Before(nd.Expires)) {
		nd.Expires = r.Expires
	}
	tk := [2]string{r.Key.Exchange, r.Key.Topic}
	t := b.topics[tk]
	if t == nil {
		t = &Topic{Exchange: r.Key.Exchange, Topic: r.Key.Topic}
		b.topics[tk] = t
	}
	if !slices.Contains(t.Servers, name) {
		t.Servers = append(t.Servers, name)
	}
}

// view returns the View, every list in order.
func (b *builder) view() *View {
	v := b.v
	v.Nodes = sortedBy(b.nodes, nil, func(a, b *Node) bool {
		return a.Name < b.Name || a.Name == b.Name && a.Addr < b.Addr
	})
	v.Topics = sortedBy(b.topics, func(t *Topic) { slices.Sort(t.Servers) }, func(a, b *Topic) bool {
		return a.Exchange+"/"+a.Topic < b.Exchange+"/"+b.Topic
	})
	v.Pools = sortedBy(b.pools, func(p *Pool) { slices.Sort(p.Members) }, func(a, b *Pool) bool {
		return a.Topic+"|"+a.Pool < b.Topic+"|"+b.Pool
	})
	slices.Sort(v.Routers)
	slices.Sort(v.Publishers)
	return v
}

// sortedBy returns the values of m (nil when there are none), each first
// tidied by tidy unless it is nil, in the order of less.
func sortedBy[K comparable, T any](m map[K]*T, tidy func(*T), less func(a, b *T) bool) []T {
	var out []T
	for _, x := range m {
		if tidy != nil {
			tidy(x)
		}
		out = append(out, *x)
	}
	sort.Slice(out, func(i, j int) bool { return less(&out[i], &out[j]) })
	return out
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
