package relay

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/relay-dev/relay/actors"
)

// Standard error codes (docs/PROTOCOL.md §6.1), after gRPC's: the Code of a
// RemoteError, in the code field of an ERROR message. A handler that
// returns an error wrapping one of the Err sentinels below (for example
// fmt.Errorf("user %d: %w", id, relay.ErrNotFound)), or made with Errorf,
// answers with its code; the caller's errors.Is(err, relay.ErrNotFound)
// then holds.
const (
	CodeCanceled           = "Canceled"           // the caller cancelled the call
	CodeUnknown            = "Unknown"            // a handler error that says nothing more
	CodeInvalidArgument    = "InvalidArgument"    // the arguments are wrong, whatever the state
	CodeDeadlineExceeded   = "DeadlineExceeded"   // the work did not finish in time
	CodeNotFound           = "NotFound"           // something asked for does not exist
	CodeAlreadyExists      = "AlreadyExists"      // something to create exists already
	CodePermissionDenied   = "PermissionDenied"   // the caller may not do this
	CodeResourceExhausted  = "ResourceExhausted"  // a quota or a resource ran out
	CodeFailedPrecondition = "FailedPrecondition" // the system is not in a state for this
	CodeAborted            = "Aborted"            // a conflict (concurrency) ended the work
	CodeUnimplemented      = "Unimplemented"      // the operation is not implemented
	CodeInternal           = "Internal"           // a broken invariant of the server
	CodeUnavailable        = "Unavailable"        // a dependency is unavailable; retrying may work
	CodeUnauthenticated    = "Unauthenticated"    // the caller's identity is missing or wrong
)

// Codes of the ERROR messages that relay itself produces (docs/PROTOCOL.md
// §6): a server, a router proxy or a publisher proxy.
const (
	CodeNoSuchMethod = "NoSuchMethod" // no handler of the method, namespace and version
	CodePanic        = "panic"        // the handler panicked
	CodeBadRequest   = "BadRequest"   // the arguments do not decode
	CodeBadReply     = "BadReply"     // the result or the reply's headers do not encode, or the reply does not decode
	CodeOverloaded   = "Overloaded"   // a server may refuse a call it cannot take (relay stops reading instead)
	// CodeNoRoute is the ERROR code of a router proxy that has no
	// connection to the server a request names.
	CodeNoRoute = actors.CodeNoRoute
	// CodeNoSubscribers is the ERROR code of a publisher proxy (with acks)
	// that no subscriber would receive the message from.
	CodeNoSubscribers = actors.CodeNoSubscribers
	// CodeUnauthorized is the ERROR code of a call whose caller's CURVE key
	// is not (or no longer) on the server's allow-list.
	CodeUnauthorized = actors.CodeUnauthorized
)

// Sentinels of the standard codes: a handler wraps one to answer with its
// code, and a caller matches a *RemoteError against one with errors.Is.
var (
	ErrCanceled           = errors.New("relay: canceled")
	ErrUnknown            = errors.New("relay: unknown error")
	ErrInvalidArgument    = errors.New("relay: invalid argument")
	ErrDeadlineExceeded   = errors.New("relay: deadline exceeded")
	ErrNotFound           = errors.New("relay: not found")
	ErrAlreadyExists      = errors.New("relay: already exists")
	ErrPermissionDenied   = errors.New("relay: permission denied")
	ErrResourceExhausted  = errors.New("relay: resource exhausted")
	ErrFailedPrecondition = errors.New("relay: failed precondition")
	ErrAborted            = errors.New("relay: aborted")
	ErrUnimplemented      = errors.New("relay: unimplemented")
	ErrInternal           = errors.New("relay: internal error")
	ErrUnavailable        = errors.New("relay: unavailable")
	ErrUnauthenticated    = errors.New("relay: unauthenticated")
)

// codes pairs each standard code with its sentinel, in the order
// errorCode tries them.
var codes = []struct {
	code string
	err  error
}{
	{CodeCanceled, ErrCanceled}, {CodeInvalidArgument, ErrInvalidArgument},
	{CodeDeadlineExceeded, ErrDeadlineExceeded}, {CodeNotFound, ErrNotFound},
	{CodeAlreadyExists, ErrAlreadyExists}, {CodePermissionDenied, ErrPermissionDenied},
	{CodeResourceExhausted, ErrResourceExhausted}, {CodeFailedPrecondition, ErrFailedPrecondition},
	{CodeAborted, ErrAborted}, {CodeUnimplemented, ErrUnimplemented}, {CodeInternal, ErrInternal},
	{CodeUnavailable, ErrUnavailable}, {CodeUnauthenticated, ErrUnauthenticated},
	{CodeUnknown, ErrUnknown},
}

// implied are the errors of Go and of relay that imply a standard code
// when a handler returns them.
var implied = []struct {
	err  error
	code string
}{
	{context.Canceled, CodeCanceled}, {context.DeadlineExceeded, CodeDeadlineExceeded},
	{ErrTimeout, CodeDeadlineExceeded}, {fs.ErrNotExist, CodeNotFound},
	{fs.ErrExist, CodeAlreadyExists}, {fs.ErrPermission, CodePermissionDenied},
	{ErrNoServers, CodeUnavailable}, {ErrClosed, CodeUnavailable},
	{ErrBackPressure, CodeResourceExhausted}, {ErrNoSuchMethod, CodeUnimplemented},
	{ErrBadTarget, CodeInvalidArgument}, {ErrBadHeader, CodeInvalidArgument},
	{ErrUnauthorized, CodePermissionDenied},
}

// aliases are relay's own codes that also match a standard sentinel.
var aliases = map[string]error{
	CodeBadRequest: ErrInvalidArgument,
	CodeOverloaded: ErrResourceExhausted,
	CodePanic:      ErrInternal,
	CodeBadReply:   ErrInternal,
	// A request refused for its caller's CURVE key (docs/SECURITY.md).
	CodeUnauthorized: ErrPermissionDenied,
}

// Errorf returns a *RemoteError with code and the formatted message, for a
// handler to answer with any code, standard or its own.
func Errorf(code, format string, args ...any) *RemoteError {
	return &RemoteError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Is reports whether target is the sentinel of e's code (ErrNotFound for
// "NotFound"), so that callers can match codes with errors.Is.
func (e *RemoteError) Is(target error) bool {
	for _, c := range codes {
		if c.err == target && e.Code == c.code {
			return true
		}
	}
	return target != nil && aliases[e.Code] == target
}

// CodeOf returns the code of err: "" for nil, else the code it travels
// with when a handler returns it, or, for an error of Call, the code of
// its outcome (a *RemoteError's Code; ErrTimeout: "DeadlineExceeded";
// ErrNoServers: "Unavailable"; context.Canceled: "Canceled"; …). Metrics
// and interceptors use it to name outcomes.
func CodeOf(err error) string {
	if err == nil {
		return ""
	}
	return errorCode(err)
}

// errorCode is the Code a handler error travels with: a *RemoteError's
// Code, an ErrorCode() method's result, the code of a standard sentinel
// it wraps or of a Go or relay error that implies one, else Unknown.
func errorCode(err error) string {
	var re *RemoteError
	if errors.As(err, &re) {
		return re.Code
	}
	var coded interface{ ErrorCode() string }
	if errors.As(err, &coded) {
		return coded.ErrorCode()
	}
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	for _, c := range implied {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return CodeUnknown
}

// errorMessage is the Message a handler error travels with: a
// *RemoteError's own Message (not wrapped again), else err.Error().
func errorMessage(err error) string {
	if re, ok := err.(*RemoteError); ok {
		return re.Message
	}
	return err.Error()
}
