package relay

import (
	"context"
	"time"
)

// Kind is the kind of message an interceptor sees.
type Kind string

// The kinds of message interceptors see.
const (
	KindCall   Kind = "call"
	KindCast   Kind = "cast"
	KindFanout Kind = "fanout"
	KindNotify Kind = "notify"
)

// CallInfo describes one outgoing message to client interceptors.
type CallInfo struct {
	// Kind is KindCall, KindCast, KindFanout or KindNotify.
	Kind Kind
	// Target is where it goes. For a notification: exchange "$notify" and
	// the notification's topic.
	Target Target
	// Method is the method, or a notification's event type.
	Method string
	// Header is what the message will carry: the ctx's headers (WithHeader)
	// as a copy that interceptors may change; SetHeader makes it.
	Header Header
	// Deadline is the message's deadline.
	Deadline time.Time
	// ReplyHeader holds, once the invoker of a call returned, the headers
	// of its answer.
	ReplyHeader Header
}

// SetHeader sets a header of the message, making Header if needed.
func (i *CallInfo) SetHeader(key, value string) {
	if i.Header == nil {
		i.Header = Header{}
	}
	i.Header[key] = value
}

// Invoker sends the message info describes: args to the method (for a
// notification, args is the Notification), and for a call decodes the
// reply into reply. It returns what Call, Cast or Notify return.
type Invoker func(ctx context.Context, info *CallInfo, args, reply any) error

// ClientInterceptor runs around every call, cast, fanout and notification
// a node sends, like grpc-go's unary client interceptors: it sees the
// target, method, headers and deadline in info, may change info.Header or
// ctx, must call next (once) to send, and sees the outcome in next's error
// (and, for a call, info.ReplyHeader). Interceptors given with
// WithClientInterceptor are chained: the first given is the outermost.
type ClientInterceptor func(ctx context.Context, info *CallInfo, args, reply any, next Invoker) error

// ServerInterceptor runs around every handler of a node's servers, and
// around its listeners' handlers (Listen, not ListenBatch), like grpc-go's
// unary server interceptors: it sees the request (Kind, Target, Method,
// Header, Deadline), calls next to run the handler, and sees and may
// change its outcome. A handler's panic reaches the interceptors as an
// error of code "panic". Interceptors given with WithServerInterceptor are
// chained: the first given is the outermost.
type ServerInterceptor func(ctx context.Context, req *Request, next Handler) (any, error)

// WithClientInterceptor adds interceptors around everything the node sends
// (see ClientInterceptor). A node without any pays nothing for them.
func WithClientInterceptor(ics ...ClientInterceptor) Option {
	return func(o *options) { o.clientInterceptors = append(o.clientInterceptors, ics...) }
}

// WithServerInterceptor adds interceptors around every handler the node
// runs (see ServerInterceptor). A node without any pays nothing for them.
func WithServerInterceptor(ics ...ServerInterceptor) Option {
	return func(o *options) { o.serverInterceptors = append(o.serverInterceptors, ics...) }
}

// chainClient returns the invoker that runs ics around final, the first
// outermost; nil when there are no interceptors.
func chainClient(ics []ClientInterceptor, final Invoker) Invoker {
	if len(ics) == 0 {
		return nil
	}
	for i := len(ics) - 1; i >= 0; i-- {
		ic, next := ics[i], final
		final = func(ctx context.Context, info *CallInfo, args, reply any) error {
			return ic(ctx, info, args, reply, next)
		}
	}
	return final
}

// chainServer returns h wrapped in ics, the first outermost; h itself when
// there are none.
func chainServer(ics []ServerInterceptor, h Handler) Handler {
	for i := len(ics) - 1; i >= 0; i-- {
		ic, next := ics[i], h
		h = func(ctx context.Context, req *Request) (any, error) { return ic(ctx, req, next) }
	}
	return h
}

// intercepted runs a call, cast, fanout or notification through the
// client interceptors.
func (n *Node) intercepted(ctx context.Context, kind Kind, t Target, method string, deadline time.Time, args, reply any) error {
	info := &CallInfo{Kind: kind, Target: t, Method: method, Header: HeaderFromContext(ctx).Clone(), Deadline: deadline}
	return n.invoke(ctx, info, args, reply)
}

// invoked is the innermost Invoker: it sends what info describes, with
// info's headers.
func (n *Node) invoked(ctx context.Context, info *CallInfo, args, reply any) error {
	out := &outgoing{header: info.Header, reply: &info.ReplyHeader}
	switch info.Kind {
	case KindCall:
		err := n.call(ctx, info.Target, info.Method, args, reply, time.Now(), info.Deadline, out)
		if o := outgoingOf(ctx); o != nil && o.reply != nil {
			*o.reply = info.ReplyHeader
		}
		return err
	case KindNotify:
		note, _ := args.(Notification)
		return n.notify(ctx, note, out)
	default:
		return n.cast(ctx, info.Target, info.Method, args, time.Now(), info.Deadline, out)
	}
}
