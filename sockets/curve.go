package sockets

import (
	"errors"
	"fmt"

	zmq "github.com/pebbe/zmq4"

	"github.com/relay-dev/relay/curve"
)

// ErrUnauthorized is the reason for messages dropped because a connection
// was refused at its ZMTP handshake: a CURVE key not on the server's
// allow-list, a server that could not prove its key, or one side with
// CURVE and the other without.
var ErrUnauthorized = errors.New("sockets: connection refused at the handshake")

// Curve turns ZMTP CURVE on for a loop's sockets. Server sockets (ROUTER,
// XPUB) prove Keys and admit the clients that the ZAP handler of Domain
// allows (see Context.AddDomain); client sockets (DEALER, SUB) present Keys
// and connect only to endpoints that carry their server's public key
// (curve.WithKey).
type Curve struct {
	Keys   curve.KeyPair
	Domain string
}

// isServer reports whether sockets of type t take the CURVE server role.
func isServer(t zmq.Type) bool { return t == zmq.ROUTER || t == zmq.XPUB }

// applyCurve sets c on a new socket of type t. Runs in the loop's goroutine.
func (c *Curve) apply(s *zmq.Socket, t zmq.Type) error {
	if c == nil {
		return nil
	}
	if c.Domain == "" && isServer(t) {
		return errors.New("curve: server socket without a ZAP domain (it would admit any client)")
	}
	steps := []struct {
		name string
		f    func() error
	}{
		{"curve_publickey", func() error { return s.SetCurvePublickey(string(c.Keys.Public[:])) }},
		{"curve_secretkey", func() error { return s.SetCurveSecretkey(string(c.Keys.Secret[:])) }},
	}
	if isServer(t) {
		steps = append(steps,
			struct {
				name string
				f    func() error
			}{"curve_server", func() error { return s.SetCurveServer(1) }},
			struct {
				name string
				f    func() error
			}{"zap_domain", func() error { return s.SetZapDomain(c.Domain) }})
	}
	for _, st := range steps {
		if err := st.f(); err != nil {
			return fmt.Errorf("set %s: %w", st.name, err)
		}
	}
	return nil
}

// connect connects s to addr, an endpoint that may carry its server's
// public key (curve.WithKey): with CURVE on, the key is set as the server
// key first (libzmq takes the options at connect time, so one socket may
// connect to several servers, each with its key); an endpoint without a
// key is refused. Without CURVE the key is ignored: the server will refuse
// the plaintext handshake, and the monitor reports it. Runs in the loop's
// goroutine.
func connect(s *zmq.Socket, c *Curve, addr string) error {
	ep, key, keyed, err := curve.SplitMember(addr)
	if err != nil {
		return err
	}
	if c != nil {
		if !keyed {
			return fmt.Errorf("%w: %s has no CURVE key and this socket uses CURVE", ErrUnauthorized, ep)
		}
		if err := s.SetCurveServerkey(string(key[:])); err != nil {
			return fmt.Errorf("set curve_serverkey: %w", err)
		}
	}
	return s.Connect(ep)
}

// Protocol error values of libzmq's handshake events (zmq.h).
const (
	protocolCryptographic     = 0x11000001
	protocolMechanismMismatch = 0x11000002
)

// handshakeReason explains a failed ZMTP handshake seen by a server socket
// (server) or a client socket.
func handshakeReason(ev zmq.Event, value int, server bool) string {
	switch {
	case ev == zmq.EVENT_HANDSHAKE_FAILED_AUTH && server:
		return fmt.Sprintf("client refused by the ZAP handler (status %d): its CURVE key is not on the allow-list", value)
	case ev == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
		return fmt.Sprintf("refused by the server (status %d): this node's CURVE key is not on its allow-list", value)
	case ev == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL && value == protocolMechanismMismatch:
		if server {
			return "the client uses another security mechanism: this socket has CURVE keys and the client not, or the other way round"
		}
		return "the server uses another security mechanism: it has CURVE keys and this node not, or the other way round"
	case ev == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL && value == protocolCryptographic && server:
		return "CURVE handshake failed: the client expected another server key (a stale or forged registration)"
	case ev == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
		return fmt.Sprintf("ZMTP handshake failed (protocol error %#x)", value)
	case server:
		return fmt.Sprintf("ZMTP handshake failed (errno %d)", value)
	}
	return fmt.Sprintf("CURVE handshake failed (errno %d): the server did not prove the key it registered (an impostor, or a stale registration)", value)
}
