package relay

import (
	"errors"
	"slices"

	"github.com/relay-dev/relay/internal/renewal"
	"github.com/relay-dev/relay/matchmaker"
)

// renewLoop keeps the node's registrations alive (see renewal.Loop). Runs in
// its own goroutine.
func (n *Node) renewLoop() {
	r := renewal.Loop{MM: n.mm, TTL: n.opts.registrationTTL, Log: n.log, Entries: n.entries,
		Result: func(err error) { n.renewErr.Store(&err) }}
	r.Run(n.base, n.down, n.renewKick)
}

// deferRegistration takes the outcome of a new registration (Serve,
// Listen): when the name service is unavailable (matchmaker.ErrMatchmaker:
// Redis down or restarting), the server or listener serves anyway and the
// renewal loop registers it as soon as it can, retrying with back-off; a
// process that starts during a Redis outage comes up instead of failing.
// Other errors are returned.
func (n *Node) deferRegistration(err error) error {
	if err == nil || !errors.Is(err, matchmaker.ErrMatchmaker) {
		return err
	}
	n.log.Warn("serving, not registered yet: the matchmaker is unavailable; the renewal loop retries", "err", err)
	n.renewErr.Store(&err)
	select {
	case n.renewKick <- struct{}{}:
	default:
	}
	return nil
}

// entries are the node's registrations: each server's bare and directed
// keys, and each listener's topics.
func (n *Node) entries() []matchmaker.Entry {
	servers, listeners := n.registered()
	var es []matchmaker.Entry
	for _, s := range servers {
		if s.isStopped() {
			continue
		}
		for _, k := range s.keys() {
			es = append(es, matchmaker.Entry{Key: k, Addr: s.member()})
		}
	}
	for _, l := range listeners {
		if l.stopped.Load() {
			continue
		}
		for _, t := range l.topics {
			es = append(es, matchmaker.Entry{Key: matchmaker.Key{Exchange: notifyExchange, Topic: t}, Addr: l.member()})
		}
	}
	return es
}

// registered returns the node's servers and listeners.
func (n *Node) registered() ([]*Server, []*Listener) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	var servers []*Server
	for _, ss := range n.servers {
		servers = append(servers, ss...)
	}
	var listeners []*Listener
	for _, ls := range n.listeners {
		for _, l := range ls {
			if !slices.Contains(listeners, l) {
				listeners = append(listeners, l)
			}
		}
	}
	return servers, listeners
}
