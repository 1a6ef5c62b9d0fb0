package sockets

import (
	"fmt"
	"sync"

	zmq "github.com/pebbe/zmq4"

	"github.com/relay-dev/relay/curve"
)

// zapEndpoint is where libzmq sends ZAP requests (ZeroMQ RFC 27).
const zapEndpoint = "inproc://zeromq.zap.01"

// Authorizer admits CURVE clients for one ZAP domain: the server sockets of
// one node or proxy.
type Authorizer struct {
	// Allow reports whether the client with public key k is admitted.
	// Called from the ZAP handler's goroutine; it must not block.
	Allow func(k curve.Key) bool
	// OnDeny, when set, is told of each client refused, with its key and
	// its IP address.
	OnDeny func(k curve.Key, addr string)
}

// zap is the process's ZAP handler: one REP socket on the shared context,
// owned by one loop, serving the domains of every node and proxy of the
// process. zmq4's AuthStart would serve only zmq4's default context, which
// relay does not use; without a handler on relay's own context libzmq
// admits every CURVE client that knows the server key.
type zap struct {
	*handle

	// mu guards domains.
	mu      sync.RWMutex
	domains map[string]Authorizer
}

// AddDomain makes the ZAP handler admit, on the server sockets that use
// domain (Curve.Domain), the clients a allows. The handler is started on
// the first call, before any CURVE socket binds, and runs until the
// context is terminated.
func (c *Context) AddDomain(domain string, a Authorizer) error {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.zap == nil {
		z, err := startZAP(c.z)
		if err != nil {
			return fmt.Errorf("sockets: zap handler: %w", err)
		}
		shared.zap = z
	}
	shared.zap.mu.Lock()
	shared.zap.domains[domain] = a
	shared.zap.mu.Unlock()
	return nil
}

// RemoveDomain stops admitting anybody on domain.
func (c *Context) RemoveDomain(domain string) {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.zap != nil {
		shared.zap.mu.Lock()
		delete(shared.zap.domains, domain)
		shared.zap.mu.Unlock()
	}
}

func startZAP(z *zmq.Context) (*zap, error) {
	zp := &zap{domains: map[string]Authorizer{}}
	h, err := start("zap", nil, func(h *handle, ready func()) error { return zp.run(z, h, ready) })
	if err != nil {
		return nil, err
	}
	zp.handle = h
	return zp, nil
}

// Runs in the loop's goroutine; owns the REP socket.
func (zp *zap) run(z *zmq.Context, h *handle, ready func()) error {
	s, err := z.NewSocket(zmq.REP)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.SetLinger(0); err != nil {
		return err
	}
	if err := s.Bind(zapEndpoint); err != nil {
		return fmt.Errorf("bind %s: %w", zapEndpoint, err)
	}
	if err := h.p.add(s, 0); err != nil {
		return err
	}
	ready()
	var fired []int
	for !quitting(h.quit) {
		req, err := s.RecvMessageBytes(zmq.DONTWAIT)
		if isAgain(err) {
			fired = h.sleep(h.p, nil, nil, 0, fired[:0])
			continue
		}
		if err != nil {
			// Answer nothing, but never stop: without a handler libzmq
			// would admit everybody. Wait for the next request.
			fired = h.sleep(h.p, nil, nil, pollBacklog, fired[:0])
			continue
		}
		rep := zp.answer(req)
		for {
			if _, err := s.SendMessage(rep...); !isAgain(err) {
				break
			}
		}
	}
	return nil
}

// answer builds the ZAP reply to req: version, request id, status code,
// status text, user id (the client's public key in Z85), metadata.
func (zp *zap) answer(req [][]byte) []any {
	if len(req) < 6 || string(req[0]) != "1.0" {
		id := []byte{}
		if len(req) > 1 {
			id = req[1]
		}
		return []any{"1.0", id, "400", "malformed ZAP request", "", ""}
	}
	id, domain, addr, mech := req[1], string(req[2]), string(req[3]), string(req[5])
	deny := func(text string) []any { return []any{"1.0", id, "400", text, "", ""} }
	if mech != "CURVE" || len(req) != 7 || len(req[6]) != 32 {
		return deny("CURVE required")
	}
	zp.mu.RLock()
	a, ok := zp.domains[domain]
	zp.mu.RUnlock()
	if !ok {
		return deny("unknown ZAP domain")
	}
	var k curve.Key
	copy(k[:], req[6])
	allowed := false
	func() {
		defer func() { _ = recover() }() // an Allow that panics denies
		allowed = a.Allow(k)
	}()
	if !allowed {
		if a.OnDeny != nil {
			a.OnDeny(k, addr)
		}
		return deny("key not on the allow-list")
	}
	return []any{"1.0", id, "200", "OK", k.String(), ""}
}
