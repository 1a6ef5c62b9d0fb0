package relay

import (
	"fmt"
	"time"

	"github.com/relay-dev/relay/envelope"
)

// Request is one call or cast received by a server.
type Request struct {
	// Method is the method called.
	Method string
	// Target is the target the caller addressed.
	Target Target
	// ID is the message id (32 hex digits), the same on a resent message.
	ID string
	// Deadline is the caller's deadline (zero if none).
	Deadline time.Time
	// Cast is true for a cast or a fanout: no reply is sent.
	Cast bool
	// Kind is KindCall, KindCast, KindFanout, or (for server interceptors
	// around a listener) KindNotify.
	Kind Kind
	// Header holds the headers the caller sent (nil when none).
	Header Header
	// Attempt counts the resends of the request (WithAcks): 0 when first
	// sent, n for the n-th resend. Redelivered is Attempt > 0: with acks a
	// request is handled at least once, and twice only when its server
	// stopped (a crash, a kill) after its handler began and before it was
	// recorded as handled (with WithDataDir; without, a server that
	// restarts forgets what it handled). A handler that must not run twice
	// for one ID checks it.
	Attempt     int
	Redelivered bool
	// Caller is who sent the request, as CURVE authenticated it: its
	// public key and its name on this node's allow-list (zero without
	// CURVE; through a router proxy, the client the proxy admitted). A
	// handler authorizes per method with it, e.g. returning an error with
	// code CodeUnauthorized (ErrorCode) to callers it refuses.
	Caller Peer

	body  []byte
	reply Header // headers for the answer
}

// SetReplyHeader sets a header of the call's answer (REPLY or ERROR); the
// caller reads it with WithReplyHeader. Not safe for concurrent use: set
// reply headers from the handler's goroutine.
func (r *Request) SetReplyHeader(key, value string) {
	if r.reply == nil {
		r.reply = Header{}
	}
	r.reply[key] = value
}

// Decode decodes the call's arguments into v, a pointer. Its error, when a
// handler returns it, reaches the caller as a RemoteError with Code
// "BadRequest".
func (r *Request) Decode(v any) error {
	if err := envelope.DecodeBody(r.body, v); err != nil {
		return &badRequestError{fmt.Errorf("relay: decode arguments of %s into %T: %w", r.Method, v, err)}
	}
	return nil
}

// badRequestError marks arguments that do not decode.
type badRequestError struct{ err error }

func (e *badRequestError) Error() string { return e.err.Error() }

func (e *badRequestError) Unwrap() error { return e.err }

func (e *badRequestError) ErrorCode() string { return CodeBadRequest }

// requestKind is the Kind of a request record.
func requestKind(k envelope.Kind, v *envelope.View) Kind {
	switch {
	case k == envelope.KindCall:
		return KindCall
	case k == envelope.KindFanout || v.Fanout():
		return KindFanout
	case k == envelope.KindNotify:
		return KindNotify
	}
	return KindCast
}

// requestTarget is the target a request addressed, built from the server's
// own strings where they are equal (they are, for all but the version), so
// that a request costs no string of its own.
func (s *Server) requestTarget(v *envelope.View) Target {
	t := Target{Exchange: s.target.Exchange, Topic: s.target.Topic, Namespace: s.target.Namespace, Fanout: v.Fanout()}
	if len(v.Server()) > 0 {
		t.Server = s.target.Server
	}
	switch ver := v.Version(); {
	case len(ver) == 0:
	case string(ver) == s.target.Version:
		t.Version = s.target.Version
	default:
		t.Version = string(ver)
	}
	return t
}

func deadlineTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}
