package relay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/relay-dev/relay/matchmaker"
)

// Errors a call or cast can return. Match them with errors.Is; the returned
// error wraps them with the facts (target, method, address).
var (
	// ErrTimeout: the call's deadline passed before its reply arrived. When
	// the deadline was ctx's, the error also matches context.DeadlineExceeded.
	ErrTimeout = errors.New("relay: call timed out")
	// ErrNoServers: nothing was registered for the target within the
	// discovery wait (WithDiscoveryWait).
	ErrNoServers = errors.New("relay: no servers for target")
	// ErrNoSuchMethod: the server has no such method, or does not serve the
	// call's namespace, or serves no compatible version.
	ErrNoSuchMethod = errors.New("relay: no such method")
	// ErrClosed: the node is closed (or closing).
	ErrClosed = errors.New("relay: node closed")
	// ErrBackPressure: a send queue is full; the message was not sent.
	// Retry later, or raise WithQueueSize.
	ErrBackPressure = errors.New("relay: send queue full (back-pressure)")
	// ErrBadTarget: the target cannot be used (e.g. an empty topic).
	ErrBadTarget = errors.New("relay: bad target")
	// ErrTooLarge: the message is larger than WithMaxMessageSize, the
	// largest a receiver takes; it was not sent.
	ErrTooLarge = errors.New("relay: message too large")
	// ErrTooManyConnections: the node is connected to as many servers as
	// WithMaxConnections allows; the message was not sent.
	ErrTooManyConnections = errors.New("relay: too many server connections (WithMaxConnections)")
	// ErrNodeFailed: an actor of the node failed more often than its
	// supervisor allows; the node must be closed and started again.
	ErrNodeFailed = errors.New("relay: node failed")
	// ErrBadHeader: headers that cannot be sent (too long once encoded) or
	// that arrived malformed.
	ErrBadHeader = errors.New("relay: bad header")

	// ErrMatchmaker: the name service could not be asked (Redis down,
	// unreachable, refusing the password). A call or cast whose target is
	// not in the node's cache fails with it; targets it knows keep their
	// cached routes. The same value as matchmaker.ErrMatchmaker.
	ErrMatchmaker = matchmaker.ErrMatchmaker

	// ErrModeMismatch: the servers of the target run in the other topology
	// (router-proxy mode, or direct) than this node; the message says
	// which and the option to change (WithRouterProxy).
	ErrModeMismatch = errors.New("relay: servers and this node run in different modes")
)

// RemoteError is a handler's error, returned by Call. Code is the error's
// code: the Code of a *RemoteError the handler returned, the ErrorCode() of
// an error that has that method, the standard code of a sentinel the error
// wraps (ErrNotFound: "NotFound") or that a Go error implies
// (fs.ErrNotExist: "NotFound", context.DeadlineExceeded:
// "DeadlineExceeded"), else "Unknown". errors.Is(err, ErrNotFound) holds
// for a RemoteError of code "NotFound" (see the Code constants).
type RemoteError struct {
	Code    string
	Message string
}

// Error returns "relay: remote error CODE: MESSAGE".
func (e *RemoteError) Error() string {
	return fmt.Sprintf("relay: remote error %s: %s", e.Code, e.Message)
}

// timeoutError is the ErrTimeout of one call.
type timeoutError struct {
	what       string
	after      time.Duration
	ctxExpired bool // the deadline was ctx's
}

func (e *timeoutError) Error() string {
	return fmt.Sprintf("%v: %s after %v", ErrTimeout, e.what, e.after.Round(time.Millisecond))
}

func (e *timeoutError) Is(target error) bool {
	return target == ErrTimeout || (e.ctxExpired && target == context.DeadlineExceeded)
}
