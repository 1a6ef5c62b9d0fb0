package relay_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/relay-dev/relay"
	"github.com/relay-dev/relay/curve"
)

// Two nodes on one in-process matchmaker: one serves the topic "compute",
// the other calls it.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const mm = "memory://example"

	server, err := relay.Start(ctx, relay.WithHost("host1"), relay.WithMatchmaker(mm))
	if err != nil {
		log.Fatal(err)
	}
	defer server.Close()
	srv, err := server.Serve(relay.Target{Topic: "compute"})
	if err != nil {
		log.Fatal(err)
	}
	srv.Handle("add", func(ctx context.Context, r *relay.Request) (any, error) {
		var xs []int
		if err := r.Decode(&xs); err != nil {
			return nil, err
		}
		sum := 0
		for _, x := range xs {
			sum += x
		}
		return sum, nil
	})
	srv.Handle("divide", func(ctx context.Context, r *relay.Request) (any, error) {
		var xs [2]int
		if err := r.Decode(&xs); err != nil {
			return nil, err
		}
		if xs[1] == 0 {
			return nil, &relay.RemoteError{Code: "DivideByZero", Message: "division by zero"}
		}
		return xs[0] / xs[1], nil
	})

	client, err := relay.Start(ctx, relay.WithHost("client1"), relay.WithMatchmaker(mm))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	// Any server of the topic.
	var sum int
	if err := client.Call(ctx, relay.Target{Topic: "compute"}, "add", []int{40, 1, 1}, &sum); err != nil {
		log.Fatal(err)
	}
	fmt.Println("sum:", sum)

	// That server only.
	var q int
	if err := client.Call(ctx, relay.Target{Topic: "compute", Server: "host1"}, "divide", [2]int{84, 2}, &q); err != nil {
		log.Fatal(err)
	}
	fmt.Println("quotient:", q)

	// A handler's error comes back as a *RemoteError.
	err = client.Call(ctx, relay.Target{Topic: "compute"}, "divide", [2]int{1, 0}, &q)
	var re *relay.RemoteError
	if errors.As(err, &re) {
		fmt.Println("remote error:", re.Code)
	}

	// No such method.
	err = client.Call(ctx, relay.Target{Topic: "compute"}, "multiply", []int{6, 7}, nil)
	fmt.Println("no such method:", errors.Is(err, relay.ErrNoSuchMethod))

	// Output:
	// sum: 42
	// quotient: 42
	// remote error: DivideByZero
	// no such method: true
}

// CURVE on every socket, with per-method authorization: the server admits
// the keys on its allow-list and its handler refuses callers by name.
func ExampleWithCurveKeys() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const mm = "memory://example-curve"
	serverKeys, _ := curve.Generate() // or curve.LoadKeyPair("keys/server.key"), or WithCurve
	adminKeys, _ := curve.Generate()
	guestKeys, _ := curve.Generate()
	// Who the server admits, by name; what each client trusts.
	clients := curve.NewAllowList(map[curve.Key]string{adminKeys.Public: "admin", guestKeys.Public: "guest"})
	servers := curve.NewAllowList(map[curve.Key]string{serverKeys.Public: "server"})

	server, err := relay.Start(ctx, relay.WithMatchmaker(mm), relay.WithCurveKeys(serverKeys, clients))
	if err != nil {
		log.Fatal(err)
	}
	defer server.Close()
	srv, err := server.Serve(relay.Target{Topic: "accounts"})
	if err != nil {
		log.Fatal(err)
	}
	srv.Handle("close", func(ctx context.Context, r *relay.Request) (any, error) {
		if r.Caller.Name != "admin" {
			return nil, relay.Errorf(relay.CodePermissionDenied, "%s may not close accounts", r.Caller)
		}
		return "closed by " + r.Caller.Name, nil
	})

	for _, keys := range []curve.KeyPair{adminKeys, guestKeys} {
		client, err := relay.Start(ctx, relay.WithMatchmaker(mm), relay.WithCurveKeys(keys, servers))
		if err != nil {
			log.Fatal(err)
		}
		var out string
		err = client.Call(ctx, relay.Target{Topic: "accounts"}, "close", nil, &out)
		fmt.Println(out, errors.Is(err, relay.ErrPermissionDenied))
		client.Close()
	}
	// Output:
	// closed by admin false
	//  true
}
