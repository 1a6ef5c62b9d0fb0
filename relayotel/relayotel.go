// Package relayotel traces relay calls, casts, fanouts and notifications
// with OpenTelemetry: a client interceptor starts a client (or producer)
// span and injects its context into the message's headers as W3C
// traceparent/tracestate; a server interceptor extracts it and starts the
// server (or consumer) span as its child, so that both share one trace
// id. Services that do not import this package do not pay for tracing.
//
//	node, err := relay.Start(ctx,
//		relay.WithClientInterceptor(relayotel.ClientInterceptor()),
//		relay.WithServerInterceptor(relayotel.ServerInterceptor()))
//
// By default the global TracerProvider and TextMapPropagator are used
// (otel.SetTracerProvider, otel.SetTextMapPropagator); a global
// propagator that was never set is replaced by W3C trace context.
package relayotel

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/relay-dev/relay"
)

// instrumentation is the name of the tracer.
const instrumentation = "github.com/relay-dev/relay/relayotel"

// Option configures the interceptors.
type Option func(*config)

type config struct {
	provider   trace.TracerProvider
	propagator propagation.TextMapPropagator
}

// WithTracerProvider sets the TracerProvider (default: otel's global).
func WithTracerProvider(p trace.TracerProvider) Option { return func(c *config) { c.provider = p } }

// WithPropagator sets the propagator (default: otel's global, or W3C trace
// context when none was set).
func WithPropagator(p propagation.TextMapPropagator) Option {
	return func(c *config) { c.propagator = p }
}

func newConfig(opts []Option) config {
	var c config
	for _, o := range opts {
		o(&c)
	}
	if c.provider == nil {
		c.provider = otel.GetTracerProvider()
	}
	if c.propagator == nil {
		c.propagator = otel.GetTextMapPropagator()
		if len(c.propagator.Fields()) == 0 {
			c.propagator = propagation.TraceContext{}
		}
	}
	return c
}

// carrier adapts relay headers to a propagation.TextMapCarrier.
type carrier struct{ h *relay.Header }

func (c carrier) Get(key string) string { return c.h.Get(key) }

func (c carrier) Set(key, value string) {
	if *c.h == nil {
		*c.h = relay.Header{}
	}
	(*c.h)[key] = value
}

func (c carrier) Keys() []string {
	keys := make([]string, 0, len(*c.h))
	for k := range *c.h {
		keys = append(keys, k)
	}
	return keys
}

// attributes are a span's attributes for a message.
func attributes(kind relay.Kind, t relay.Target, method string) []attribute.KeyValue {
	as := []attribute.KeyValue{
		attribute.String("messaging.system", "relay"),
		attribute.String("rpc.system", "relay"),
		attribute.String("rpc.method", method),
		attribute.String("relay.kind", string(kind)),
		attribute.String("relay.topic", t.Topic),
	}
	if t.Exchange != "" {
		as = append(as, attribute.String("relay.exchange", t.Exchange))
	}
	if t.Server != "" {
		as = append(as, attribute.String("relay.server", t.Server))
	}
	return as
}

// spanName is "topic/method".
func spanName(t relay.Target, method string) string { return t.Topic + "/" + method }

// end records err on span and ends it.
func end(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		span.SetAttributes(attribute.String("relay.code", relay.CodeOf(err)))
	}
	span.End()
}

// ClientInterceptor returns the client side: a span around each call
// (kind client) or cast, fanout and notification (kind producer), whose
// context travels in the message's headers.
func ClientInterceptor(opts ...Option) relay.ClientInterceptor {
	c := newConfig(opts)
	tracer := c.provider.Tracer(instrumentation)
	return func(ctx context.Context, info *relay.CallInfo, args, reply any, next relay.Invoker) error {
		kind := trace.SpanKindProducer
		if info.Kind == relay.KindCall {
			kind = trace.SpanKindClient
		}
		ctx, span := tracer.Start(ctx, spanName(info.Target, info.Method), trace.WithSpanKind(kind),
			trace.WithAttributes(attributes(info.Kind, info.Target, info.Method)...))
		c.propagator.Inject(ctx, carrier{&info.Header})
		err := next(ctx, info, args, reply)
		end(span, err)
		return err
	}
}

// ServerInterceptor returns the server side: a span around each handler
// (kind server for a call, consumer for the rest), a child of the span
// whose context the request's headers carry.
func ServerInterceptor(opts ...Option) relay.ServerInterceptor {
	c := newConfig(opts)
	tracer := c.provider.Tracer(instrumentation)
	return func(ctx context.Context, req *relay.Request, next relay.Handler) (any, error) {
		ctx = c.propagator.Extract(ctx, carrier{&req.Header})
		kind := trace.SpanKindConsumer
		if req.Kind == relay.KindCall {
			kind = trace.SpanKindServer
		}
		ctx, span := tracer.Start(ctx, spanName(req.Target, req.Method), trace.WithSpanKind(kind),
			trace.WithAttributes(append(attributes(req.Kind, req.Target, req.Method), attribute.String("relay.msg_id", req.ID))...))
		res, err := next(ctx, req)
		end(span, err)
		return res, err
	}
}
