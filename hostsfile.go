package relay

import (
	"context"
	"net"
	"slices"
	"strings"

	"github.com/relay-dev/relay/curve"
	"github.com/relay-dev/relay/matchmaker"
)

// With a hosts file (matchmaker.File) nothing is registered: a client
// reaches what the file lists, and a directed target names the host field
// of an entry. Two mistakes follow, which relay says rather than letting a
// message vanish: a directed target that names no entry's host (the caller
// gets ErrNoServers with fileHint), and a server whose own entry's host
// field is not its name (directed messages reach it and are refused there,
// where the caller of a cast cannot see it: checkListed warns at Serve).

// usesHostsFile reports whether the node's matchmaker is a hosts file.
func (n *Node) usesHostsFile() bool { return strings.HasPrefix(n.opts.matchmaker, "file:") }

// fileKey is t's topic as a hosts file names it: "topic" or
// "exchange/topic".
func fileKey(t Target) string {
	if t.Exchange != "" {
		return t.Exchange + "/" + t.Topic
	}
	return t.Topic
}

// entryHosts returns the host:port of each hosts-file entry of t's topic.
// The file is in memory: no I/O.
func (n *Node) entryHosts(t Target) []string {
	members, err := n.mm.Lookup(context.Background(), matchmaker.Key{Exchange: t.Exchange, Topic: t.Topic})
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(members))
	for _, m := range members {
		hp, _, _, _ := curve.SplitMember(m)
		out = append(out, strings.TrimPrefix(hp, "tcp://"))
	}
	return out
}

// fileHint is what ErrNoServers adds with a hosts file: which hosts the
// file lists for t's topic, when a directed target named none of them.
func (n *Node) fileHint(t Target) string {
	if !n.usesHostsFile() {
		return ""
	}
	topic := fileKey(t)
	entries := n.entryHosts(t)
	if len(entries) == 0 {
		return "; the hosts file has no entry for " + topic
	}
	if t.Server == "" {
		return ""
	}
	var hosts []string
	for _, hp := range entries {
		if h, _, err := net.SplitHostPort(hp); err == nil && !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	return "; with a hosts file a directed target (Target.Server) names the host field of an entry, and the entries of " +
		topic + " name " + strings.Join(hosts, ", ")
}

// checkListed warns when the hosts file lists this node's endpoint for
// s's topic under another host than the name s serves as (directed calls
// to that host reach this node and get NoSuchMethod; directed casts are
// dropped here, unseen by their callers), or when no entry of the topic
// names this node's port (no client finds it). Direct mode only (see
// direct.serving): in router-proxy mode clients do not connect to it.
func (n *Node) checkListed(s *Server) {
	if !n.usesHostsFile() {
		return
	}
	t := s.target
	hp, _, _, _ := curve.SplitMember(n.endpoint)
	hp = strings.TrimPrefix(hp, "tcp://")
	_, port, err := net.SplitHostPort(hp)
	if err != nil {
		return // ipc or inproc: not in a hosts file
	}
	named, portListed := false, false
	for _, e := range n.entryHosts(t) {
		host, p, err := net.SplitHostPort(e)
		if err != nil || p != port {
			continue
		}
		portListed = true
		switch {
		case host == t.Server:
			named = true
		case e == hp:
			n.log.Warn("the hosts file lists this node under another host name than it serves as: directed calls to that host are refused here (NoSuchMethod) and directed casts dropped",
				"topic", fileKey(t), "entry", e, "entry_host", host, "serves_as", t.Server,
				"fix", "start the node as "+host+" (WithHost, node serve --host "+host+")")
			return
		}
	}
	if !portListed && !named {
		n.log.Warn("the hosts file has no entry for this node's port under its topic: no client will find it",
			"topic", fileKey(t), "endpoint", n.endpoint,
			"fix", "bind the address and port of the topic's entry (WithBindAddress and WithPortRange, node serve --bind and --ports)")
	}
}
