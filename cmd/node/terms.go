package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/relay-dev/relay"
	"github.com/relay-dev/relay/matchmaker"
)

// optionFlags maps the option names of relay and of package proxy, which
// their errors name, to the flags of node that set them.
var optionFlags = []struct{ option, flag string }{
	{"WithBindAddress", "bind"},
	{"WithAdvertise", "advertise"},
	{"WithCurve", "curve-key"},
	{"WithPortRange", "ports"},
	{"WithMatchmaker", "matchmaker"},
	{"WithHost", "host"},
	{"WithRegistrationTTL", "ttl"},
	{"WithRouterProxy", "router-proxy"},
	{"WithPubSub", "pubsub"},
	{"WithAcks", "acks"},
	{"Target.Server", "server"},
	{"WithAck", "ack"}, // after WithAcks, which it prefixes
	{"WithLocal", "local"},
	{"WithFrontend", "frontend"},
	{"WithBackend", "backend"},
}

// inFlagTerms renders err with each relay option it names replaced by the
// flag of this command that sets it (WithBindAddress → --bind), so that
// the message speaks of what the user typed. A handler's error is left as
// it is.
func (c *cli) inFlagTerms(err error) string {
	var remote *relay.RemoteError
	if errors.As(err, &remote) {
		return err.Error()
	}
	var pairs []string
	for _, o := range optionFlags {
		if c.fs.Lookup(o.flag) != nil {
			pairs = append(pairs, o.option, "--"+o.flag)
		}
	}
	return strings.NewReplacer(pairs...).Replace(err.Error())
}

// matchmakerURL checks the --matchmaker value v, before relay opens it, for
// the mistakes that its URL parser would report obscurely: a missing scheme
// ("127.0.0.1:6379": did you mean redis://127.0.0.1:6379?) or a path
// without file://. A relative file: URL is made absolute.
func matchmakerURL(v string) (string, error) {
	if v == "" {
		return "", errors.New("--matchmaker is required")
	}
	if strings.Contains(v, "://") || strings.HasPrefix(v, "file:") {
		return absFileURL(v, ""), nil
	}
	const forms = "memory://NAME, file:///path/hosts.json, redis://host:port or redis+sentinel://h1:26379,h2:26379/master"
	if host, port, err := net.SplitHostPort(v); err == nil && host != "" {
		if _, err := strconv.Atoi(port); err == nil {
			return "", fmt.Errorf("--matchmaker %q has no scheme: did you mean redis://%s? (want %s)", matchmaker.Redact(v), matchmaker.Redact(v), forms)
		}
	}
	if strings.HasSuffix(v, ".json") || strings.ContainsRune(v, filepath.Separator) {
		abs, err := filepath.Abs(v)
		if err != nil {
			abs = v
		}
		return "", fmt.Errorf("--matchmaker %q has no scheme: did you mean file://%s? (want %s)", matchmaker.Redact(v), filepath.ToSlash(abs), forms)
	}
	return "", fmt.Errorf("--matchmaker %q has no scheme: want %s", matchmaker.Redact(v), forms)
}

// absFileURL makes a relative file: URL ("file:hosts.json") absolute,
// relative to dir ("" for the working directory). Other URLs are returned
// unchanged.
func absFileURL(v, dir string) string {
	rest, ok := strings.CutPrefix(v, "file:")
	if !ok || strings.HasPrefix(rest, "/") || rest == "" {
		return v
	}
	p := rest
	if !filepath.IsAbs(p) {
		p = filepath.Join(dir, p)
	}
	if abs, err := filepath.Abs(p); err == nil {
		p = abs
	}
	return "file://" + filepath.ToSlash(p)
}

// heldLog holds the records of a logger back until release: while
// relay.Start runs, a node that cannot start (an actor that keeps failing)
// logs every restart of that actor, up to its restart intensity, before
// Start returns the one error that sums them up. The command prints that
// error; the records are written only when the node did start.
type heldLog struct {
	// mu guards the fields below.
	mu      sync.Mutex
	holding bool
	held    []heldRecord
}

type heldRecord struct {
	h slog.Handler
	r slog.Record
}

// newHeldLogger returns a logger writing to h that holds its records back
// until hl.release.
func newHeldLogger(h slog.Handler) (*slog.Logger, *heldLog) {
	hl := &heldLog{holding: true}
	return slog.New(heldHandler{inner: h, hl: hl}), hl
}

// release stops holding records back, and writes those held when write is
// true (else drops them).
func (hl *heldLog) release(write bool) {
	hl.mu.Lock()
	defer hl.mu.Unlock()
	if write {
		for _, r := range hl.held {
			_ = r.h.Handle(context.Background(), r.r)
		}
	}
	hl.held, hl.holding = nil, false
}

// heldHandler is the slog.Handler of a heldLog.
type heldHandler struct {
	inner slog.Handler
	hl    *heldLog
}

func (h heldHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.inner.Enabled(ctx, l) }

func (h heldHandler) Handle(ctx context.Context, r slog.Record) error {
	h.hl.mu.Lock()
	defer h.hl.mu.Unlock()
	if h.hl.holding {
		h.hl.held = append(h.hl.held, heldRecord{h.inner, r.Clone()})
		return nil
	}
	return h.inner.Handle(ctx, r)
}

func (h heldHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return heldHandler{inner: h.inner.WithAttrs(as), hl: h.hl}
}

func (h heldHandler) WithGroup(name string) slog.Handler {
	return heldHandler{inner: h.inner.WithGroup(name), hl: h.hl}
}
