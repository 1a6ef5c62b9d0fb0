package relay

import (
	"context"
	"fmt"
	"maps"

	"github.com/relay-dev/relay/actors"
	"github.com/relay-dev/relay/envelope"
)

// Header is a message's metadata: string keys to string values, carried in
// the wire header's meta field (docs/PROTOCOL.md §3.2) with every kind of
// message: a trace id, a caller identity, a tenant. A nil Header is empty.
// Keys are case-sensitive; the encoded headers of one message are at most
// envelope.MaxFieldLen (4096) bytes.
type Header map[string]string

// Get returns the value of key, or "" when it is not set.
func (h Header) Get(key string) string { return h[key] }

// Clone returns a copy of h (nil for an empty h).
func (h Header) Clone() Header {
	if len(h) == 0 {
		return nil
	}
	return maps.Clone(h)
}

// outgoing is what a context carries for the calls made with it: the
// headers to send, and where to put the reply's headers.
type outgoing struct {
	header Header
	reply  *Header
}

type outgoingKey struct{}

// headers returns the headers to send (nil for none; o may be nil).
func (o *outgoing) headers() Header {
	if o == nil {
		return nil
	}
	return o.header
}

// outgoingOf returns what ctx carries for calls made with it, or nil.
func outgoingOf(ctx context.Context) *outgoing {
	o, _ := ctx.Value(outgoingKey{}).(*outgoing)
	return o
}

// WithHeader returns a copy of ctx whose calls, casts, fanouts and
// notifications carry the header key: value, with the headers ctx carried
// already. A handler reads them in Request.Header, a listener in
// Delivery.Header. The headers a request arrived with are not sent on by
// the calls its handler makes; pass them on explicitly.
func WithHeader(ctx context.Context, key, value string) context.Context {
	o := outgoing{}
	if p := outgoingOf(ctx); p != nil {
		o = *p
	}
	h := make(Header, len(o.header)+1)
	maps.Copy(h, o.header)
	h[key] = value
	o.header = h
	return context.WithValue(ctx, outgoingKey{}, &o)
}

// WithReplyHeader returns a copy of ctx whose calls store the headers of
// their answer (set by the handler with Request.SetReplyHeader) in *dst.
// *dst is set to nil when the answer carries none.
func WithReplyHeader(ctx context.Context, dst *Header) context.Context {
	o := outgoing{}
	if p := outgoingOf(ctx); p != nil {
		o = *p
	}
	o.reply = dst
	return context.WithValue(ctx, outgoingKey{}, &o)
}

// HeaderFromContext returns the headers that calls made with ctx carry
// (see WithHeader), or nil. The Header is shared: do not modify it.
func HeaderFromContext(ctx context.Context) Header {
	if o := outgoingOf(ctx); o != nil {
		return o.header
	}
	return nil
}

// appendMeta encodes h for a header's meta field, checking its size.
func appendMeta(b []byte, h Header) ([]byte, error) {
	b = envelope.AppendMeta(b, h)
	if len(b) > envelope.MaxFieldLen {
		return nil, fmt.Errorf("%w: %d headers encode to %d bytes, max %d", ErrBadHeader, len(h), len(b), envelope.MaxFieldLen)
	}
	return b, nil
}

// decodeMeta decodes a received meta field; a bad one is reported as
// nil headers and an error.
func decodeMeta(meta []byte) (Header, error) {
	if len(meta) == 0 {
		return nil, nil
	}
	m, err := envelope.DecodeMeta(meta)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadHeader, err)
	}
	return Header(m), nil
}

// setMeta puts the headers of out, if any, in h's meta field.
func setMeta(h *envelope.Header, out *outgoing) error {
	if out == nil {
		return nil
	}
	return setHeaders(h, out.header)
}

// setHeaders puts headers, if any, in h's meta field.
func setHeaders(h *envelope.Header, headers Header) error {
	if len(headers) == 0 {
		return nil
	}
	meta, err := appendMeta(nil, headers)
	if err != nil {
		return fmt.Errorf("%w (%v %s on %s)", err, h.Kind, h.Method, h.Target.Topic)
	}
	h.Meta = meta
	return nil
}

// replyHeader decodes the headers of a call's answer; malformed ones are
// counted and dropped.
func (n *Node) replyHeader(res actors.Result) Header {
	h, err := decodeMeta(res.Meta)
	if err != nil {
		n.counters.Malformed.Add(1)
		n.dropped.Warn("headers of an answer dropped", "err", err)
	}
	return h
}
