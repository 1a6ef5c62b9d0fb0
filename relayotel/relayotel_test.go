package relayotel_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/relay-dev/relay"
	"github.com/relay-dev/relay/internal/testutil"
	"github.com/relay-dev/relay/relayotel"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A traced call gives a client span and a server span with one trace id,
// the server's a child of the client's, the context carried in the
// traceparent header; a failed call's spans record the error; a cast gives
// a producer and a consumer span of one trace.
func TestTracedCall(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(context.Background())
	opts := []relayotel.Option{relayotel.WithTracerProvider(tp), relayotel.WithPropagator(propagation.TraceContext{})}
	mm := fmt.Sprintf("memory://relayotel-%d", time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	server, err := relay.Start(ctx, relay.WithMatchmaker(mm), relay.WithHost("s0"),
		relay.WithServerInterceptor(relayotel.ServerInterceptor(opts...)))
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	srv, err := server.Serve(relay.Target{Topic: "compute"})
	if err != nil {
		t.Fatal(err)
	}
	var traceparent string
	srv.Handle("add", func(ctx context.Context, r *relay.Request) (any, error) {
		traceparent = r.Header.Get("traceparent")
		if !trace.SpanContextFromContext(ctx).IsValid() {
			return nil, errors.New("handler's ctx has no span")
		}
		return 2, nil
	})
	srv.Handle("missing", func(context.Context, *relay.Request) (any, error) { return nil, relay.ErrNotFound })
	casted := make(chan struct{}, 1)
	srv.Handle("log", func(context.Context, *relay.Request) (any, error) { casted <- struct{}{}; return nil, nil })
	client, err := relay.Start(ctx, relay.WithMatchmaker(mm), relay.WithHost("c0"),
		relay.WithClientInterceptor(relayotel.ClientInterceptor(opts...)))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	if err := client.Call(ctx, relay.Target{Topic: "compute"}, "add", 1, nil); err != nil {
		t.Fatal(err)
	}
	spans := exp.GetSpans()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2 (client, server): %v", len(spans), spans)
	}
	var cs, ss tracetest.SpanStub
	for _, s := range spans {
		switch s.SpanKind {
		case trace.SpanKindClient:
			cs = s
		case trace.SpanKindServer:
			ss = s
		}
	}
	if !cs.SpanContext.IsValid() || !ss.SpanContext.IsValid() {
		t.Fatalf("want a client and a server span, got %v", spans)
	}
	if cs.SpanContext.TraceID() != ss.SpanContext.TraceID() || ss.Parent.SpanID() != cs.SpanContext.SpanID() {
		t.Errorf("server span (trace %s, parent %s) is not the child of the client span (trace %s, span %s)",
			ss.SpanContext.TraceID(), ss.Parent.SpanID(), cs.SpanContext.TraceID(), cs.SpanContext.SpanID())
	}
	if want := fmt.Sprintf("00-%s-%s-01", cs.SpanContext.TraceID(), cs.SpanContext.SpanID()); traceparent != want {
		t.Errorf("traceparent header %q, want %q", traceparent, want)
	}
	if cs.Name != "compute/add" {
		t.Errorf("span name %q, want compute/add", cs.Name)
	}

	exp.Reset()
	if err := client.Call(ctx, relay.Target{Topic: "compute"}, "missing", nil, nil); !errors.Is(err, relay.ErrNotFound) {
		t.Fatalf("call: %v", err)
	}
	for _, s := range exp.GetSpans() {
		if s.Status.Code.String() != "Error" {
			t.Errorf("%v span of a failed call has status %v", s.SpanKind, s.Status)
		}
	}

	exp.Reset()
	if err := client.Cast(ctx, relay.Target{Topic: "compute"}, "log", nil); err != nil {
		t.Fatal(err)
	}
	<-casted
	testutil.WaitFor(t, 5*time.Second, func() error {
		spans := exp.GetSpans()
		if len(spans) != 2 {
			return fmt.Errorf("%d spans of a cast, want 2", len(spans))
		}
		if spans[0].SpanContext.TraceID() != spans[1].SpanContext.TraceID() {
			return fmt.Errorf("cast spans in two traces")
		}
		return nil
	})
}
