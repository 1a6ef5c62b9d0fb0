package relay_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relay-dev/relay"
)

// awaitHeader sends (again and again, as PUB/SUB may not have joined yet)
// until a header arrives on got.
func awaitHeader(t *testing.T, what string, got <-chan relay.Header, send func() error) relay.Header {
	t.Helper()
	var h relay.Header
	waitFor(t, 15*time.Second, func() error {
		if err := send(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		select {
		case h = <-got:
			return nil
		case <-time.After(200 * time.Millisecond):
			return fmt.Errorf("%s: no delivery yet", what)
		}
	})
	return h
}

// Headers travel with calls (both ways), casts, fanouts and notifications,
// straight to servers, through router proxies, and through publisher
// proxies.
func TestHeaders(t *testing.T) {
	for _, mode := range []string{"direct", "router-proxy", "pubsub"} {
		t.Run(mode, func(t *testing.T) {
			mm := newMatchmaker(t)
			var opts []relay.Option
			switch mode {
			case "router-proxy":
				startRouterProxy(t, mm)
				opts = append(opts, relay.WithRouterProxy(true))
			case "pubsub":
				startProxy(t, mm)
				opts = append(opts, relay.WithPubSub(true))
			}
			server := newNode(t, mm, "s0", opts...)
			s, err := server.Serve(compute)
			if err != nil {
				t.Fatal(err)
			}
			casts, fanouts, notes := make(chan relay.Header, 100), make(chan relay.Header, 100), make(chan relay.Header, 100)
			s.Handle("call", func(_ context.Context, r *relay.Request) (any, error) {
				r.SetReplyHeader("answer", r.Header.Get("tenant")+"-ok")
				return map[string]string(r.Header), nil
			})
			s.Handle("fail", func(_ context.Context, r *relay.Request) (any, error) {
				r.SetReplyHeader("answer", "failed")
				return nil, relay.ErrNotFound
			})
			s.Handle("cast", func(_ context.Context, r *relay.Request) (any, error) {
				if r.Kind == relay.KindFanout {
					fanouts <- r.Header
				} else {
					casts <- r.Header
				}
				return nil, nil
			})
			if _, err := server.Listen([]string{"billing"}, "pool", func(_ context.Context, d *relay.Delivery) error {
				notes <- d.Header
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			client := newNode(t, mm, "client", opts...)
			ctx := relay.WithHeader(relay.WithHeader(ctxTimeout(t, 30*time.Second), "tenant", "acme"), "trace", "t-1")
			want := relay.Header{"tenant": "acme", "trace": "t-1"}
			var echoed map[string]string
			var reply relay.Header
			waitFor(t, 10*time.Second, func() error { // router proxies learn of servers within a second
				return client.Call(relay.WithReplyHeader(ctx, &reply), compute, "call", nil, &echoed)
			})
			if !equalHeader(echoed, want) || reply.Get("answer") != "acme-ok" || len(reply) != 1 {
				t.Errorf("call: server saw %v (want %v); reply headers %v (want answer=acme-ok)", echoed, want, reply)
			}
			err = client.Call(relay.WithReplyHeader(ctx, &reply), compute, "fail", nil, nil)
			if !errors.Is(err, relay.ErrNotFound) || reply.Get("answer") != "failed" {
				t.Errorf("failing call: %v, reply headers %v; want NotFound and answer=failed", err, reply)
			}
			if err := client.Call(ctx, compute, "call", nil, &echoed); err != nil {
				t.Fatal(err)
			}
			if h := awaitHeader(t, "cast", casts, func() error { return client.Cast(ctx, compute, "cast", nil) }); !equalHeader(h, want) {
				t.Errorf("cast carried %v, want %v", h, want)
			}
			if mode != "router-proxy" { // fanout there needs publisher proxies
				fan := compute
				fan.Fanout = true
				if h := awaitHeader(t, "fanout", fanouts, func() error { return client.Cast(ctx, fan, "cast", nil) }); !equalHeader(h, want) {
					t.Errorf("fanout carried %v, want %v", h, want)
				}
			}
			note := relay.Notification{Topic: "billing", EventType: "paid"}
			if h := awaitHeader(t, "notify", notes, func() error { return client.Notify(ctx, note) }); !equalHeader(h, want) {
				t.Errorf("notification carried %v, want %v", h, want)
			}
			// No headers: nil, not an empty map.
			var none map[string]string
			if err := client.Call(ctxTimeout(t, 5*time.Second), compute, "call", nil, &none); err != nil || none != nil {
				t.Errorf("call without headers: server saw %v (%v), want nil", none, err)
			}
		})
	}
}

func equalHeader(got map[string]string, want relay.Header) bool {
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

// Headers too long to encode are refused before anything is sent.
func TestHeaderTooLong(t *testing.T) {
	mm, nodes, _ := newCluster(t, 1)
	_ = mm
	ctx := relay.WithHeader(ctxTimeout(t, 5*time.Second), "big", strings.Repeat("x", 5000))
	err := nodes[1].Call(ctx, compute, "add", 1, nil)
	if !errors.Is(err, relay.ErrBadHeader) || !strings.Contains(err.Error(), "4096") {
		t.Errorf("call with 5000-byte header: %v, want ErrBadHeader naming the limit", err)
	}
}

// trace records what interceptors saw, in order. Safe for concurrent use.
type trace struct {
	mu     sync.Mutex
	events []string
}

func (tr *trace) add(format string, args ...any) {
	tr.mu.Lock()
	tr.events = append(tr.events, fmt.Sprintf(format, args...))
	tr.mu.Unlock()
}

func (tr *trace) take() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	ev := tr.events
	tr.events = nil
	return ev
}

// Client and server interceptors see every call, cast and notification
// once, chained in the order given, with target, method, headers,
// deadline and outcome.
func TestInterceptors(t *testing.T) {
	mm := newMatchmaker(t)
	tr := &trace{}
	client := func(name string) relay.ClientInterceptor {
		return func(ctx context.Context, info *relay.CallInfo, args, reply any, next relay.Invoker) error {
			if info.Deadline.IsZero() {
				t.Errorf("%s: no deadline in %+v", name, info)
			}
			info.SetHeader("via", info.Header.Get("via")+name)
			tr.add("%s> %s %s %s %s", name, info.Kind, info.Target.Topic, info.Method, info.Header.Get("tenant"))
			err := next(ctx, info, args, reply)
			tr.add("<%s %v %s", name, errors.Is(err, relay.ErrNotFound), info.ReplyHeader.Get("answer"))
			return err
		}
	}
	server := func(name string) relay.ServerInterceptor {
		return func(ctx context.Context, req *relay.Request, next relay.Handler) (any, error) {
			tr.add("%s> %s %s %s %s", name, req.Kind, req.Target.Topic, req.Method, req.Header.Get("via"))
			res, err := next(ctx, req)
			code := ""
			var re *relay.RemoteError
			if errors.As(err, &re) {
				code = re.Code
			}
			tr.add("<%s %v %s", name, errors.Is(err, relay.ErrNotFound), code)
			return res, err
		}
	}
	srv := newNode(t, mm, "s0", relay.WithServerInterceptor(server("S1"), server("S2")))
	s, err := srv.Serve(compute)
	if err != nil {
		t.Fatal(err)
	}
	s.Handle("get", func(_ context.Context, r *relay.Request) (any, error) {
		tr.add("handler")
		r.SetReplyHeader("answer", "42")
		return nil, fmt.Errorf("item 7: %w", relay.ErrNotFound)
	})
	s.Handle("crash", func(context.Context, *relay.Request) (any, error) { panic("boom") })
	casted := make(chan struct{}, 1)
	s.Handle("log", func(context.Context, *relay.Request) (any, error) { casted <- struct{}{}; return nil, nil })
	noted := make(chan struct{}, 1)
	if _, err := srv.Listen([]string{"audit"}, "p", func(context.Context, *relay.Delivery) error { noted <- struct{}{}; return nil }); err != nil {
		t.Fatal(err)
	}
	cl := newNode(t, mm, "client", relay.WithClientInterceptor(client("C1"), client("C2")))
	ctx := relay.WithHeader(ctxTimeout(t, 10*time.Second), "tenant", "acme")

	err = cl.Call(ctx, compute, "get", nil, nil)
	if !errors.Is(err, relay.ErrNotFound) {
		t.Fatalf("call: %v, want NotFound", err)
	}
	want := []string{
		"C1> call compute get acme", "C2> call compute get acme",
		"S1> call compute get C1C2", "S2> call compute get C1C2", "handler",
		"<S2 true ", "<S1 true ", "<C2 true 42", "<C1 true 42",
	}
	if got := tr.take(); !slices.Equal(got, want) {
		t.Errorf("call: interceptors saw\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	var re *relay.RemoteError
	if err := cl.Call(ctx, compute, "crash", nil, nil); !errors.As(err, &re) || re.Code != relay.CodePanic {
		t.Fatalf("call of a panicking handler: %v", err)
	}
	if got := tr.take(); len(got) != 8 || !slices.Contains(got, "<S2 false panic") {
		t.Errorf("panic: interceptors saw %q, want the panic as S2's outcome", got)
	}

	if err := cl.Cast(ctx, compute, "log", nil); err != nil {
		t.Fatal(err)
	}
	<-casted
	// The handler signalled before the interceptors saw its outcome: wait
	// for the outermost to return.
	var seen []string
	waitFor(t, 5*time.Second, func() error {
		seen = append(seen, tr.take()...)
		if !slices.Contains(seen, "S2> cast compute log C1C2") || !slices.Contains(seen, "<S1 false ") {
			return fmt.Errorf("cast: interceptors saw %q", seen)
		}
		return nil
	})
	if err := cl.Notify(ctx, relay.Notification{Topic: "audit", EventType: "login"}); err != nil {
		t.Fatal(err)
	}
	<-noted
	seen = nil
	waitFor(t, 5*time.Second, func() error {
		seen = append(seen, tr.take()...)
		if !slices.Contains(seen, "C1> notify audit login acme") || !slices.Contains(seen, "S1> notify audit login C1C2") ||
			!slices.Contains(seen, "<S1 false ") {
			return fmt.Errorf("notify: interceptors saw %q", seen)
		}
		return nil
	})

	// Every call once, concurrently.
	tr.take()
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() { _ = cl.Call(ctx, compute, "get", nil, nil) })
	}
	wg.Wait()
	counts := map[string]int{}
	for _, e := range tr.take() {
		counts[strings.Fields(e)[0]]++
	}
	for _, name := range []string{"C1>", "C2>", "S1>", "S2>", "handler", "<S2", "<S1", "<C2", "<C1"} {
		if counts[name] != 20 {
			t.Errorf("20 calls: %s seen %d times", name, counts[name])
		}
	}
}

// A caller that cancels its context ends its call at once with
// context.Canceled, and the handler's context is cancelled on the server,
// directly and through a router proxy.
func TestCancelTravels(t *testing.T) {
	for _, mode := range []string{"direct", "router-proxy"} {
		t.Run(mode, func(t *testing.T) {
			mm := newMatchmaker(t)
			var opts []relay.Option
			if mode == "router-proxy" {
				startRouterProxy(t, mm)
				opts = append(opts, relay.WithRouterProxy(true))
			}
			server := newNode(t, mm, "s0", opts...)
			s, err := server.Serve(compute)
			if err != nil {
				t.Fatal(err)
			}
			started := make(chan struct{}, 1)
			ended := make(chan error, 1)
			s.Handle("ping", func(context.Context, *relay.Request) (any, error) { return nil, nil })
			s.Handle("sleep", func(ctx context.Context, _ *relay.Request) (any, error) {
				started <- struct{}{}
				select {
				case <-ctx.Done():
					ended <- ctx.Err()
					return nil, ctx.Err()
				case <-time.After(time.Minute):
					ended <- nil
					return "slept", nil
				}
			})
			client := newNode(t, mm, "client", opts...)
			waitFor(t, 10*time.Second, func() error { return client.Call(ctxTimeout(t, time.Second), compute, "ping", nil, nil) })

			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			returned := make(chan error, 1)
			go func() { returned <- client.Call(ctx, compute, "sleep", nil, nil) }()
			<-started
			at := time.Now()
			cancel()
			if err := <-returned; err != context.Canceled {
				t.Fatalf("Call after cancel = %v, want context.Canceled", err)
			}
			returnedIn := time.Since(at)
			select {
			case err := <-ended:
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("handler's ctx ended with %v, want context.Canceled", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the handler's context was not cancelled (its deadline is a minute away)")
			}
			t.Logf("Call returned %v and the handler's ctx ended %v after cancel", returnedIn, time.Since(at))
			waitFor(t, 5*time.Second, func() error {
				if st := server.Stats(); st.Cancelled != 1 {
					return fmt.Errorf("server Stats().Cancelled = %d, want 1", st.Cancelled)
				}
				return nil
			})
			if st := client.Stats(); st.LateReplies != 0 {
				t.Errorf("client got %d late replies: a cancelled call must not be answered", st.LateReplies)
			}
		})
	}
}

// Handler errors travel with standard codes that errors.Is matches on the
// caller's side; a plain Go error is "Unknown", not its type name.
func TestErrorCodes(t *testing.T) {
	_, nodes, _ := newClusterWith(t, 1, func(_ int, s *relay.Server) {
		s.Handle("fail", func(_ context.Context, r *relay.Request) (any, error) {
			var which string
			if err := r.Decode(&which); err != nil {
				return nil, err
			}
			switch which {
			case "notfound":
				return nil, fmt.Errorf("user 7: %w", relay.ErrNotFound)
			case "file":
				_, err := os.Open("/nonexistent/relay")
				return nil, err
			case "denied":
				return nil, relay.Errorf(relay.CodePermissionDenied, "tenant %s", "acme")
			case "deadline":
				return nil, context.DeadlineExceeded
			}
			return nil, errors.New("plain failure")
		})
	})
	client := nodes[1]
	ctx := ctxTimeout(t, 10*time.Second)
	for _, c := range []struct {
		arg  any
		code string
		is   error
	}{
		{"notfound", relay.CodeNotFound, relay.ErrNotFound},
		{"file", relay.CodeNotFound, relay.ErrNotFound},
		{"denied", relay.CodePermissionDenied, relay.ErrPermissionDenied},
		{"deadline", relay.CodeDeadlineExceeded, relay.ErrDeadlineExceeded},
		{"other", relay.CodeUnknown, relay.ErrUnknown},
		{42, relay.CodeBadRequest, relay.ErrInvalidArgument},
	} {
		err := client.Call(ctx, compute, "fail", c.arg, nil)
		var re *relay.RemoteError
		if !errors.As(err, &re) || re.Code != c.code || !errors.Is(err, c.is) {
			t.Errorf("fail(%v) = %v, want code %s matching %v", c.arg, err, c.code, c.is)
		}
		if errors.Is(err, relay.ErrInternal) {
			t.Errorf("fail(%v) = %v matches ErrInternal too", c.arg, err)
		}
	}
}
