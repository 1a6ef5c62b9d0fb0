// Package security is the CURVE setup that nodes and proxies share: a key
// pair, an allow-list read again when its file changes, the ZAP domain of
// the owner's server sockets, and the check of a registration before it is
// used (Admit). See docs/SECURITY.md.
//
// Concurrency: a *Security is safe for concurrent use; Watch runs in a
// goroutine of its owner's, which ends it by closing done.
package security

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/relay-dev/relay/actors"
	"github.com/relay-dev/relay/curve"
	"github.com/relay-dev/relay/sockets"
)

// ErrUnauthorized is relay.ErrUnauthorized: a peer refused for want of the
// right CURVE key. Admit's errors match it.
var ErrUnauthorized = errors.New("relay: unauthorized")

// AllowListPoll is how often a node or proxy reads its allow-list file
// (WithCurve, --curve-allow) again; a change is taken without a restart.
const AllowListPoll = 250 * time.Millisecond

// Security is a node's or proxy's CURVE setup: its key pair, the
// allow-list it admits clients from and trusts servers from (read again on
// change), and the ZAP domain of its server sockets on the process's
// context. A nil *Security is plaintext: every method works on it.
type Security struct {
	keys   curve.KeyPair
	userID []byte // keys.Public in Z85, as ZAP names this node to its peers
	allow  *curve.Rotating
	domain string
	log    *slog.Logger

	// mu guards reloadErr.
	mu        sync.Mutex
	reloadErr string // the last reload failure logged, to log each once
}

// Setup is what WithCurve / WithCurveKeys (or a proxy's options) give:
// the key pair as a file or in memory, the allow-list as a file or
// directory or in memory. The zero Setup is plaintext.
type Setup struct {
	KeyFile, AllowPath string
	Keys               *curve.KeyPair
	Allow              *curve.AllowList
}

// On reports whether c turns CURVE on.
func (c Setup) On() bool {
	return c.KeyFile != "" || c.AllowPath != "" || c.Keys != nil || c.Allow != nil
}

// Check reports a half-given setup.
func (c Setup) Check() error {
	switch {
	case !c.On():
		return nil
	case c.Keys != nil && c.KeyFile != "":
		return errors.New("give the key pair as a file or in memory, not both")
	case c.KeyFile == "" && c.Keys == nil:
		return errors.New("no key pair: give the secret key file (node keygen writes one)")
	case c.AllowPath == "" && c.Allow == nil:
		return errors.New("no allow-list: give the public keys of the peers to trust (a file or a directory)")
	}
	return nil
}

// New loads the keys and the allow-list of c; nil when c is off. log gets
// refusals, reloads and their failures.
func New(c Setup, log *slog.Logger) (*Security, error) {
	if !c.On() {
		return nil, nil
	}
	if err := c.Check(); err != nil {
		return nil, err
	}
	s := &Security{log: log}
	if c.Keys != nil {
		s.keys = *c.Keys
	} else {
		kp, err := curve.LoadKeyPair(c.KeyFile)
		if err != nil {
			return nil, err
		}
		s.keys = kp
	}
	s.userID = []byte(s.keys.Public.String())
	if c.AllowPath != "" {
		r, err := curve.OpenAllowList(c.AllowPath)
		if err != nil {
			return nil, err
		}
		s.allow = r
	} else {
		s.allow = curve.Fixed(c.Allow)
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	s.domain = "relay-" + hex.EncodeToString(b[:])
	return s, nil
}

// Start installs the ZAP domain of s on zctx: from then on its server
// sockets admit the clients on its allow-list. Refusals are logged.
func (s *Security) Start(zctx *sockets.Context) error {
	if s == nil {
		return nil
	}
	denied := actors.NewThrottledLog(s.log, time.Second)
	return zctx.AddDomain(s.domain, sockets.Authorizer{
		Allow: func(k curve.Key) bool {
			_, ok := s.allow.Current().Name(k)
			return ok
		},
		OnDeny: func(k curve.Key, addr string) {
			denied.Warn("client refused: its CURVE key is not on the allow-list", "key", k.String(), "addr", addr)
		},
	})
}

// NewContext returns a reference to the process's ZeroMQ context
// (sockets.NewContext) with the ZAP domain of s installed (Start); on an
// error nothing is left open. Release it with Stop, then its Close.
func (s *Security) NewContext() (*sockets.Context, error) {
	zctx, err := sockets.NewContext()
	if err != nil {
		return nil, err
	}
	if err := s.Start(zctx); err != nil {
		zctx.Close(time.Second)
		return nil, fmt.Errorf("curve: %w", err)
	}
	return zctx, nil
}

// Stop removes the ZAP domain.
func (s *Security) Stop(zctx *sockets.Context) {
	if s != nil {
		zctx.RemoveDomain(s.domain)
	}
}

// Socket returns the sockets' CURVE options (nil: plaintext).
func (s *Security) Socket() *sockets.Curve {
	if s == nil {
		return nil
	}
	return &sockets.Curve{Keys: s.keys, Domain: s.domain}
}

// Member returns what its owner registers for m: m carrying its public
// key, with CURVE on.
func (s *Security) Member(m string) string {
	if s == nil {
		return m
	}
	return curve.WithKey(m, s.keys.Public)
}

// Authorize names a caller by its key, if the allow-list has it.
func (s *Security) Authorize(k curve.Key) (string, bool) {
	return s.allow.Current().Name(k)
}

// Admit checks a registration before this node uses it: with CURVE, it
// must carry a key on the allow-list (a forged or stale registration
// leads to a refusal here, or at the handshake, never to calls handed to
// an impostor); without, it must carry none (a CURVE server would refuse
// the plaintext handshake). A server name in router-proxy mode ("@NAME")
// names no endpoint and is always admitted. The error wraps
// ErrUnauthorized.
func (s *Security) Admit(member string) error {
	if strings.HasPrefix(member, "@") {
		return nil
	}
	rest, k, keyed, err := curve.SplitMember(member)
	switch {
	case err != nil:
		return untrusted(err.Error())
	case s == nil && keyed:
		return untrusted(rest + " requires CURVE (it registered a key) and this node has none: give it a key pair and an allow-list (WithCurve)")
	case s == nil:
		return nil
	case !keyed:
		return untrusted(rest + " registered without a CURVE key: a plaintext peer, and this node requires CURVE")
	}
	if _, ok := s.allow.Current().Name(k); !ok {
		return untrusted(fmt.Sprintf("%s registered the CURVE key %s, which is not on this node's allow-list (forged, or not yet trusted)", rest, k))
	}
	return nil
}

// untrusted is why Admit refused a registration; it matches
// ErrUnauthorized.
type untrusted string

func (e untrusted) Error() string        { return string(e) }
func (e untrusted) Is(target error) bool { return target == ErrUnauthorized }

// Admitted returns the members that Admit accepts, counting and logging
// the others; when none is left it returns the first refusal.
func (s *Security) Admitted(members []string, counters *actors.Counters, log *actors.ThrottledLog) ([]string, error) {
	var first error
	out := members[:0:0]
	for _, m := range members {
		if err := s.Admit(m); err != nil {
			counters.Untrusted.Add(1)
			log.Warn("registration not used", "err", err)
			if first == nil {
				first = err
			}
			continue
		}
		out = append(out, m)
	}
	if len(out) == 0 {
		return nil, first
	}
	return out, nil
}

// PublicKey returns the public key (zero without CURVE).
func (s *Security) PublicKey() curve.Key {
	if s == nil {
		return curve.Key{}
	}
	return s.keys.Public
}

// errNoCurve is Reload's error without CURVE.
var errNoCurve = errors.New("relay: reload allow-list: no CURVE keys are configured (WithCurve, --curve-key)")

// Reload reads the allow-list again and logs what happened: a change once,
// a failure once per distinct error (the list in use stays).
func (s *Security) Reload() error {
	if s == nil {
		return errNoCurve
	}
	changed, err := s.allow.Reload()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		if msg := err.Error(); msg != s.reloadErr {
			s.reloadErr = msg
			s.log.Error("allow-list not reloaded; the previous one stays in use", "path", s.allow.Path(), "err", err)
		}
		return err
	}
	s.reloadErr = ""
	if changed {
		s.log.Info("allow-list reloaded", "path", s.allow.Path(), "keys", s.allow.Current().Len())
	}
	return nil
}

// Watch reloads the allow-list every AllowListPoll until done closes. Runs
// in its own goroutine.
func (s *Security) Watch(done <-chan struct{}) {
	if s == nil || s.allow.Path() == "" {
		return
	}
	t := time.NewTicker(AllowListPoll)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			_ = s.Reload()
		}
	}
}

// UserID returns the public key in Z85, as ZAP names this owner to its
// peers (nil without CURVE).
func (s *Security) UserID() []byte {
	if s == nil {
		return nil
	}
	return s.userID
}

// SetAllowList replaces the allow-list (until its file, if any, next
// changes).
func (s *Security) SetAllowList(a *curve.AllowList) { s.allow.Set(a) }
