package relay_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/relay-dev/relay"
)

// Interceptors on both sides: the client's adds a header to every call,
// the server's checks it before any handler runs and logs each outcome.
// Errors carry standard codes that errors.Is matches on the caller's side.
func Example_interceptors() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const mm = "memory://example-interceptors"

	auth := func(ctx context.Context, req *relay.Request, next relay.Handler) (any, error) {
		if req.Header.Get("user") == "" {
			return nil, fmt.Errorf("%s: %w", req.Method, relay.ErrUnauthenticated)
		}
		res, err := next(ctx, req)
		fmt.Printf("server: %s by %s: err=%v\n", req.Method, req.Header.Get("user"), err)
		return res, err
	}
	server, err := relay.Start(ctx, relay.WithHost("host1"), relay.WithMatchmaker(mm),
		relay.WithServerInterceptor(auth))
	if err != nil {
		log.Fatal(err)
	}
	defer server.Close()
	srv, err := server.Serve(relay.Target{Topic: "accounts"})
	if err != nil {
		log.Fatal(err)
	}
	srv.Handle("balance", func(_ context.Context, r *relay.Request) (any, error) {
		var id int
		if err := r.Decode(&id); err != nil {
			return nil, err
		}
		if id != 7 {
			return nil, fmt.Errorf("account %d: %w", id, relay.ErrNotFound)
		}
		return 100, nil
	})

	as := func(user string) relay.ClientInterceptor {
		return func(ctx context.Context, info *relay.CallInfo, args, reply any, next relay.Invoker) error {
			info.SetHeader("user", user)
			return next(ctx, info, args, reply)
		}
	}
	client, err := relay.Start(ctx, relay.WithHost("host2"), relay.WithMatchmaker(mm),
		relay.WithClientInterceptor(as("alice")))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	var balance int
	if err := client.Call(ctx, relay.Target{Topic: "accounts"}, "balance", 7, &balance); err != nil {
		log.Fatal(err)
	}
	fmt.Println("balance:", balance)
	err = client.Call(ctx, relay.Target{Topic: "accounts"}, "balance", 8, &balance)
	fmt.Println("not found:", errors.Is(err, relay.ErrNotFound))
	// Output:
	// server: balance by alice: err=<nil>
	// balance: 100
	// server: balance by alice: err=account 8: relay: not found
	// not found: true
}
