package relay

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/relay-dev/relay/envelope"
)

// handleGrace is how long after Serve a request for a method not handled
// yet waits for Handle: Serve registers the target before the caller of
// Serve can add its methods, and a client already waiting for the target
// may call in between.
const handleGrace = 500 * time.Millisecond

// startGrace is how long after its Start a node's requests for targets or
// methods it does not serve yet wait for Serve and Handle: a server that
// restarts on its old port is reached by its clients (their resends, their
// cached routes) as soon as it binds, before it has served its targets.
const startGrace = 2 * time.Second

// resolveLate waits, within handleGrace of the newest matching Serve or
// startGrace of the node's start, for the method to be handled; it returns
// err when it is not.
func (n *Node) resolveLate(ctx context.Context, v *envelope.View, err error) (method, *Server, error) {
	key := topicKey(string(v.Exchange()), string(v.Topic()))
	for {
		n.mu.RLock()
		until := n.started.Add(startGrace)
		for _, s := range n.servers[key] {
			until = later(until, s.started.Add(handleGrace))
		}
		handled := n.handled
		n.mu.RUnlock()
		wait := time.Until(until)
		if wait <= 0 {
			return method{}, nil, err
		}
		t := time.NewTimer(wait)
		select {
		case <-handled:
			t.Stop()
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return method{}, nil, err
		}
		m, s, rerr := n.resolve(v)
		if rerr == nil {
			return m, s, nil
		}
		err = rerr
	}
}

// awaitHandlers waits until a handler or listener is added (Handle,
// Listen) or until passes; it reports false, at once, when until has
// passed.
func (n *Node) awaitHandlers(until time.Time) bool {
	wait := time.Until(until)
	if wait <= 0 {
		return false
	}
	n.mu.RLock()
	handled := n.handled
	n.mu.RUnlock()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-handled:
	case <-t.C:
	case <-n.down:
		return false
	}
	return true
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// resolve finds the handler for a request: a server of its exchange and
// topic (and server name, when directed) whose namespace equals and whose
// version is compatible, that handles the method. It allocates nothing
// when it finds one.
func (n *Node) resolve(v *envelope.View) (method, *Server, error) {
	var buf [256]byte
	key := append(append(append(buf[:0], v.Exchange()...), 0), v.Topic()...)
	server, ns, ver, name := v.Server(), v.Namespace(), v.Version(), v.Method()
	n.mu.RLock()
	servers := n.servers[string(key)]
	n.mu.RUnlock()
	for _, s := range servers {
		st := &s.target
		if len(server) > 0 && string(server) != st.Server {
			continue
		}
		s.mu.RLock()
		m, ok := s.handlers[string(name)]
		stopped := s.stopped
		s.mu.RUnlock()
		if ok && !stopped && string(ns) == st.Namespace && (len(ver) == 0 || compatible(st.Version, string(ver))) {
			return m, s, nil
		}
	}
	return method{}, nil, n.unresolved(v, servers)
}

// unresolved explains why no handler matches a request.
func (n *Node) unresolved(v *envelope.View, servers []*Server) error {
	h := v.Header()
	t := h.Target
	var serving []string
	for _, s := range servers {
		st := s.target
		if t.Server != "" && t.Server != st.Server {
			continue
		}
		s.mu.RLock()
		stopped := s.stopped
		s.mu.RUnlock()
		if !stopped {
			serving = append(serving, fmt.Sprintf("ns=%q v=%q", st.Namespace, versionOr(st.Version)))
		}
	}
	if len(serving) == 0 {
		return fmt.Errorf("method %q: host %s serves no topic %s for server %q", h.Method, n.opts.host, t.Topic, t.Server)
	}
	return fmt.Errorf("method %q (ns=%q v=%q) not served on topic %s by host %s (serving %s)",
		h.Method, t.Namespace, t.Version, t.Topic, n.opts.host, strings.Join(serving, ", "))
}

func versionOr(v string) string {
	if v == "" {
		return "1.0"
	}
	return v
}
