package relay

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

// ErrUnauthorized: a peer was refused for want of the right CURVE key: a
// server refused this node's key (not on its allow-list), a server could
// not prove the key it registered, one side has CURVE and the other not,
// or every server registered for the target is untrusted. See
// docs/SECURITY.md.
var ErrUnauthorized = errors.New("relay: unauthorized")

// CodeUnauthorized is the ERROR code of a call whose caller's CURVE key is
// not (or no longer) on the server's allow-list.
const CodeUnauthorized = actors.CodeUnauthorized

// AllowListPoll is how often a node or proxy reads its allow-list file
// (WithCurve, --curve-allow) again; a change is taken without a restart.
const AllowListPoll = 250 * time.Millisecond

// Peer is the authenticated identity of a request's sender (CURVE): its
// public key, and its name on the receiving node's allow-list. Both are
// zero without CURVE.
type Peer struct {
	Key  curve.Key
	Name string
}

// Authenticated reports whether CURVE authenticated the peer.
func (p Peer) Authenticated() bool { return !p.Key.IsZero() }

// String returns the peer's name, or its key when it has none, or
// "anonymous" without CURVE.
func (p Peer) String() string {
	switch {
	case p.Name != "":
		return p.Name
	case p.Authenticated():
		return p.Key.String()
	}
	return "anonymous"
}

// security is a node's or proxy's CURVE setup: its key pair, the
// allow-list it admits clients from and trusts servers from (read again on
// change), and the ZAP domain of its server sockets on the process's
// context. A nil *security is plaintext.
type security struct {
	keys   curve.KeyPair
	userID []byte // keys.Public in Z85, as ZAP names this node to its peers
	allow  *curve.Rotating
	domain string
	log    *slog.Logger

	// mu guards reloadErr.
	mu        sync.Mutex
	reloadErr string // the last reload failure logged, to log each once
}

// curveSetup is what WithCurve / WithCurveKeys (or a proxy's options) give.
type curveSetup struct {
	keyFile, allowPath string
	keys               *curve.KeyPair
	allow              *curve.AllowList
}

func (c curveSetup) on() bool {
	return c.keyFile != "" || c.allowPath != "" || c.keys != nil || c.allow != nil
}

// check reports a half-given setup.
func (c curveSetup) check() error {
	switch {
	case !c.on():
		return nil
	case c.keys != nil && c.keyFile != "":
		return errors.New("give the key pair as a file or in memory, not both")
	case c.keyFile == "" && c.keys == nil:
		return errors.New("no key pair: give the secret key file (node keygen writes one)")
	case c.allowPath == "" && c.allow == nil:
		return errors.New("no allow-list: give the public keys of the peers to trust (a file or a directory)")
	}
	return nil
}

// newSecurity loads the keys and the allow-list of c; nil when c is off.
func newSecurity(c curveSetup, log *slog.Logger) (*security, error) {
	if !c.on() {
		return nil, nil
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	s := &security{log: log}
	if c.keys != nil {
		s.keys = *c.keys
	} else {
		kp, err := curve.LoadKeyPair(c.keyFile)
		if err != nil {
			return nil, err
		}
		s.keys = kp
	}
	s.userID = []byte(s.keys.Public.String())
	if c.allowPath != "" {
		r, err := curve.OpenAllowList(c.allowPath)
		if err != nil {
			return nil, err
		}
		s.allow = r
	} else {
		s.allow = curve.Fixed(c.allow)
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	s.domain = "relay-" + hex.EncodeToString(b[:])
	return s, nil
}

// start installs the ZAP domain of s on zctx: from then on its server
// sockets admit the clients on its allow-list. Refusals are counted.
func (s *security) start(zctx *sockets.Context) error {
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

// stop removes the ZAP domain.
func (s *security) stop(zctx *sockets.Context) {
	if s != nil {
		zctx.RemoveDomain(s.domain)
	}
}

// socket returns the sockets' CURVE options (nil: plaintext).
func (s *security) socket() *sockets.Curve {
	if s == nil {
		return nil
	}
	return &sockets.Curve{Keys: s.keys, Domain: s.domain}
}

// member returns what this node registers for m: m carrying its public
// key, with CURVE on.
func (s *security) member(m string) string {
	if s == nil {
		return m
	}
	return curve.WithKey(m, s.keys.Public)
}

// authorize names a caller by its key, if the allow-list has it.
func (s *security) authorize(k curve.Key) (string, bool) {
	return s.allow.Current().Name(k)
}

// admit checks a registration before this node uses it: with CURVE, it
// must carry a key on the allow-list (a forged or stale registration
// leads to a refusal here, or at the handshake, never to calls handed to
// an impostor); without, it must carry none (a CURVE server would refuse
// the plaintext handshake). A server name in router-proxy mode ("@NAME")
// names no endpoint and is always admitted. The error wraps
// ErrUnauthorized.
func (s *security) admit(member string) error {
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

// untrusted is why admit refused a registration; it matches
// ErrUnauthorized.
type untrusted string

func (e untrusted) Error() string        { return string(e) }
func (e untrusted) Is(target error) bool { return target == ErrUnauthorized }

// admitted returns the members that admit accepts, counting and logging
// the others; when none is left it returns the first refusal.
func (s *security) admitted(members []string, counters *actors.Counters, log *actors.ThrottledLog) ([]string, error) {
	var first error
	out := members[:0:0]
	for _, m := range members {
		if err := s.admit(m); err != nil {
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

// publicKey returns the public key (zero without CURVE).
func (s *security) publicKey() curve.Key {
	if s == nil {
		return curve.Key{}
	}
	return s.keys.Public
}

// errNoCurve is reload's error without CURVE.
var errNoCurve = errors.New("relay: reload allow-list: no CURVE keys are configured (WithCurve, --curve-key)")

// reload reads the allow-list again and logs what happened: a change once,
// a failure once per distinct error (the list in use stays).
func (s *security) reload() error {
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

// watch reloads the allow-list every AllowListPoll until done closes. Runs
// in its own goroutine.
func (s *security) watch(done <-chan struct{}) {
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
			_ = s.reload()
		}
	}
}
