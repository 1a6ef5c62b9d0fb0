package sockets

import (
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/relay-dev/relay/envelope"
)

// A fault injected into a running loop ends it through its own error
// path: OnFail gets an error that wraps the fault, and the loop's
// goroutine ends, whatever kind of loop it is.
func TestInjectFault(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // after the loops and the context are closed
	zctx := newTestContext(t)
	bind := Bind{Host: "127.0.0.1", PortMin: 20000, PortMax: 29999}
	type loop interface {
		InjectFault(error)
		Stop()
		Done() <-chan struct{}
	}
	for _, tc := range []struct {
		name  string
		start func(onFail func(error)) (loop, error)
	}{
		{"router", func(onFail func(error)) (loop, error) {
			return StartRouter(zctx, NewOutbox(10), RouterConfig{Bind: bind, Options: DefaultOptions(),
				OnRecv: func(Batch) bool { return false }, OnFail: onFail})
		}},
		{"router proxy", func(onFail func(error)) (loop, error) {
			return StartRouterProxy(zctx, RouterProxyConfig{Front: bind, Back: bind, Options: DefaultOptions(),
				Request: func(_, _ []byte, _ *envelope.View) ([]byte, []byte, bool) { return nil, nil, false },
				Backend: func(_, _ []byte, _ *envelope.View) ([]byte, bool) { return nil, false },
				OnFail:  onFail})
		}},
		{"publisher proxy", func(onFail func(error)) (loop, error) {
			return StartProxy(zctx, ProxyConfig{Front: bind, Back: bind, Options: DefaultOptions(),
				Prefix: func(*envelope.View) ([]byte, bool) { return nil, false }, OnFail: onFail})
		}},
		{"local publisher", func(onFail func(error)) (loop, error) {
			return StartSubscriber(zctx, SubscriberConfig{Options: DefaultOptions(), Republish: &bind, OnFail: onFail})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			failed := make(chan error, 1)
			l, err := tc.start(func(err error) { failed <- err })
			if err != nil {
				t.Fatal(err)
			}
			defer l.Stop()
			fault := errors.New("test: socket fault")
			l.InjectFault(fault)
			select {
			case err := <-failed:
				if !errors.Is(err, fault) {
					t.Fatalf("OnFail got %v, want an error wrapping the fault", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no failure reported 10s after the fault")
			}
			select {
			case <-l.Done():
			case <-time.After(10 * time.Second):
				t.Fatal("the loop's goroutine still runs 10s after its failure")
			}
		})
	}
}
