package relay

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/relay-dev/relay/matchmaker"
	"github.com/relay-dev/relay/proxy"
)

// Handler serves one method. Its result is encoded with msgpack and sent
// back to the caller; its error reaches the caller as a *RemoteError (see
// errorCode for its Code). A panic becomes a RemoteError with Code
// "panic"; the server keeps running. ctx carries the caller's deadline,
// and ends when the node closes or the caller cancels the call.
type Handler func(ctx context.Context, req *Request) (any, error)

// Server serves one target of a node. Make one with Node.Serve; add methods
// with Handle. Safe for concurrent use.
type Server struct {
	node    *Node
	target  Target
	started time.Time

	// mu guards the fields below.
	mu       sync.RWMutex
	handlers map[string]method
	stopped  bool
}

// method is a handler with its method name (so that a request can name it
// without a string of its own).
type method struct {
	name string
	h    Handler
}

// Serve registers t with the matchmaker, under its bare topic and directed
// at this node, and starts receiving calls and casts for it. t.Server
// defaults to the node's host; a different name makes this node answer
// directed calls for that name. Add methods with Handle before callers use
// them: a call that arrives within half a second of Serve for a method
// not handled yet waits for Handle; later, it gets ErrNoSuchMethod.
func (n *Node) Serve(t Target) (*Server, error) {
	select {
	case <-n.down:
		return nil, n.downErr()
	default:
	}
	if err := t.check(); err != nil {
		return nil, err
	}
	if t.Fanout {
		return nil, fmt.Errorf("%w: Serve takes a topic, not a fanout target: %s", ErrBadTarget, t)
	}
	if t.Server == "" {
		t.Server = n.opts.host
	}
	s := &Server{node: n, target: t, handlers: make(map[string]method), started: time.Now()}
	tk := topicKey(t.Exchange, t.Topic)
	n.mu.Lock()
	n.servers[tk] = append(n.servers[tk], s)
	n.mu.Unlock()
	n.topo.subscribe(proxy.FanoutPrefix(t.Exchange, t.Topic))
	n.topo.serving(s)
	if err := n.deferRegistration(s.register(n.base)); err != nil {
		s.Stop()
		return nil, fmt.Errorf("relay: serve %s: %w", t, err)
	}
	n.log.Info("serving", "target", t.String(), "endpoint", n.endpoint)
	return s, nil
}

// Target returns the target the server serves (with Server filled in).
func (s *Server) Target() Target { return s.target }

// Handle sets the handler of method, replacing any earlier one. The
// node's server interceptors (WithServerInterceptor) run around it.
func (s *Server) Handle(name string, h Handler) {
	h = chainServer(s.node.opts.serverInterceptors, s.node.safe(h))
	s.mu.Lock()
	s.handlers[name] = method{name: name, h: h}
	s.mu.Unlock()
	n := s.node
	n.mu.Lock()
	close(n.handled)
	n.handled = make(chan struct{})
	n.mu.Unlock()
}

// keys are the matchmaker entries of the server: the bare topic and the
// directed target.
func (s *Server) keys() [2]matchmaker.Key {
	t := s.target
	return [2]matchmaker.Key{
		{Exchange: t.Exchange, Topic: t.Topic},
		{Exchange: t.Exchange, Topic: t.Topic, Server: t.Server},
	}
}

// markStopped marks the server stopped; it reports whether it was not
// yet.
func (s *Server) markStopped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	first := !s.stopped
	s.stopped = true
	return first
}

// isStopped reports whether Stop was called.
func (s *Server) isStopped() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.stopped
}

func (s *Server) register(ctx context.Context) error {
	if s.isStopped() {
		return nil
	}
	ks := s.keys()
	es := []matchmaker.Entry{{Key: ks[0], Addr: s.member()}, {Key: ks[1], Addr: s.member()}}
	if err := s.node.mm.RegisterMany(ctx, es, s.node.opts.registrationTTL); err != nil {
		return fmt.Errorf("register %s and %s: %w", ks[0], ks[1], err)
	}
	return nil
}

// member is what the server registers, where its node's topology says
// clients reach it.
func (s *Server) member() string { return s.node.topo.member(s) }

// Stop unregisters the server first, so that callers move to other servers,
// then stops dispatching to it. Handlers already running finish. Idempotent.
func (s *Server) Stop() error {
	if !s.markStopped() {
		return nil
	}
	n := s.node
	n.topo.unsubscribe(proxy.FanoutPrefix(s.target.Exchange, s.target.Topic))
	var errs []error
	for _, k := range s.keys() {
		if err := n.mm.Unregister(context.Background(), k, s.member()); err != nil {
			errs = append(errs, fmt.Errorf("relay: unregister %s: %w", k, err))
		}
	}
	tk := topicKey(s.target.Exchange, s.target.Topic)
	n.mu.Lock()
	ss := n.servers[tk]
	for i, x := range ss {
		if x == s {
			ss = append(ss[:i:i], ss[i+1:]...)
			break
		}
	}
	if len(ss) == 0 {
		delete(n.servers, tk)
	} else {
		n.servers[tk] = ss
	}
	n.mu.Unlock()
	return errors.Join(errs...)
}

// topicKey is the key of a node's servers of exchange and topic.
func topicKey(exchange, topic string) string { return exchange + "\x00" + topic }
