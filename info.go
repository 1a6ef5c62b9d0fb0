package relay

import (
	"context"
	"os"
	"runtime"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/relay-dev/relay/envelope"
	"github.com/relay-dev/relay/matchmaker"
)

// Version is relay's release.
const Version = "0.11.0"

// InfoMethod is the built-in method every node answers, on any target it
// serves, with its Info (a call to a directed target of the node, with
// this method, reaches it: see NodeInfo). A handler of this name, if one
// is set, answers instead.
const InfoMethod = "$relay.info"

// Info describes a running node, as $relay.info answers it.
type Info struct {
	Host     string    `msgpack:"host" json:"host"`
	Endpoint string    `msgpack:"endpoint" json:"endpoint"`
	Version  string    `msgpack:"version" json:"version"`   // relay's release
	Protocol int       `msgpack:"protocol" json:"protocol"` // wire protocol version
	Go       string    `msgpack:"go" json:"go"`
	PID      int       `msgpack:"pid" json:"pid"`
	Started  time.Time `msgpack:"started" json:"started"`
	Uptime   float64   `msgpack:"uptime_s" json:"uptime_s"` // seconds
	// Matchmaker is the matchmaker URL, its password redacted.
	Matchmaker  string         `msgpack:"matchmaker" json:"matchmaker"`
	PubSub      bool           `msgpack:"pubsub" json:"pubsub"`
	RouterProxy bool           `msgpack:"router_proxy" json:"router_proxy"`
	Acks        bool           `msgpack:"acks" json:"acks"`
	Servers     []ServerInfo   `msgpack:"servers" json:"servers"`
	Listeners   []ListenerInfo `msgpack:"listeners" json:"listeners"`
	Stats       Stats          `msgpack:"stats" json:"stats"`
	// Extra holds what AddInfo added, by name (the metrics package adds
	// "metrics": calls, errors and latencies by method; node serve adds
	// "http": the address of its /metrics).
	Extra map[string]any `msgpack:"extra,omitempty" json:"extra,omitempty"`
}

// ServerInfo is one target a node serves and its methods.
type ServerInfo struct {
	Exchange  string   `msgpack:"exchange" json:"exchange,omitempty"`
	Topic     string   `msgpack:"topic" json:"topic"`
	Server    string   `msgpack:"server" json:"server"`
	Namespace string   `msgpack:"namespace" json:"namespace,omitempty"`
	Version   string   `msgpack:"version" json:"version,omitempty"`
	Methods   []string `msgpack:"methods" json:"methods"`
}

// ListenerInfo is one listener pool of a node and the "topic.priority"
// entries it takes.
type ListenerInfo struct {
	Pool   string   `msgpack:"pool" json:"pool"`
	Topics []string `msgpack:"topics" json:"topics"`
}

// infoExtras are the functions AddInfo added. mu guards them.
type infoExtras struct {
	mu sync.Mutex
	f  map[string]func() any
}

// AddInfo adds f's result under name to the node's Info.Extra, computed at
// each $relay.info (f must be quick and safe for concurrent use; its
// result must encode with msgpack). It replaces an earlier f of that name.
func (n *Node) AddInfo(name string, f func() any) {
	n.extras.mu.Lock()
	defer n.extras.mu.Unlock()
	if n.extras.f == nil {
		n.extras.f = map[string]func() any{}
	}
	n.extras.f[name] = f
}

// Info returns the node's Info now.
func (n *Node) Info() Info {
	now := time.Now()
	in := Info{
		Host: n.opts.host, Endpoint: n.endpoint, Version: Version, Protocol: envelope.Version,
		Go: runtime.Version(), PID: os.Getpid(), Started: n.started, Uptime: now.Sub(n.started).Seconds(),
		Matchmaker: matchmaker.Redact(n.opts.matchmaker), PubSub: n.opts.pubsub, RouterProxy: n.opts.routerProxy, Acks: n.opts.acks,
		Stats: n.Stats(),
	}
	servers, listeners := n.registered()
	for _, s := range servers {
		t := s.target
		si := ServerInfo{Exchange: t.Exchange, Topic: t.Topic, Server: t.Server, Namespace: t.Namespace, Version: t.Version}
		s.mu.RLock()
		for name := range s.handlers {
			si.Methods = append(si.Methods, name)
		}
		s.mu.RUnlock()
		slices.Sort(si.Methods)
		in.Servers = append(in.Servers, si)
	}
	sort.Slice(in.Servers, func(i, j int) bool {
		a, b := in.Servers[i], in.Servers[j]
		return a.Exchange+"/"+a.Topic+"/"+a.Namespace < b.Exchange+"/"+b.Topic+"/"+b.Namespace
	})
	for _, l := range listeners {
		in.Listeners = append(in.Listeners, ListenerInfo{Pool: l.pool, Topics: slices.Clone(l.topics)})
	}
	n.extras.mu.Lock()
	for name, f := range n.extras.f {
		if in.Extra == nil {
			in.Extra = map[string]any{}
		}
		in.Extra[name] = f()
	}
	n.extras.mu.Unlock()
	return in
}

// NodeInfo asks the node that serves t (a directed target, such as
// Target{Topic: "compute", Server: "alpha"}) for its Info.
func (n *Node) NodeInfo(ctx context.Context, t Target) (Info, error) {
	var in Info
	err := n.Call(ctx, t, InfoMethod, nil, &in)
	return in, err
}
