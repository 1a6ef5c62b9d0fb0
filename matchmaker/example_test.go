package matchmaker_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/relay-dev/relay/matchmaker"
)

// Open a matchmaker by URL; register and look up.
func ExampleOpen() {
	m, err := matchmaker.Open("memory://example-open")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	ctx := context.Background()
	k := matchmaker.Key{Exchange: "nova", Topic: "compute"}
	_ = m.Register(ctx, k, "tcp://10.0.0.1:7000", 30*time.Second)
	addrs, _ := m.Lookup(ctx, k)
	fmt.Println(addrs)
	// Output: [tcp://10.0.0.1:7000]
}

// A node registers all its targets in one round trip: the bare topic and
// the directed key of each server it runs.
func ExampleMatchmaker_registerMany() {
	m := matchmaker.NewMemory("example-many")
	defer m.Close()
	ctx := context.Background()
	const me = "tcp://10.0.0.1:7000"
	var entries []matchmaker.Entry
	for _, topic := range []string{"compute", "conductor"} {
		entries = append(entries,
			matchmaker.Entry{Key: matchmaker.Key{Topic: topic}, Addr: me},
			matchmaker.Entry{Key: matchmaker.Key{Topic: topic, Server: "host1"}, Addr: me})
	}
	if err := m.RegisterMany(ctx, entries, 30*time.Second); err != nil {
		fmt.Println(err)
	}
	addrs, _ := m.Lookup(ctx, matchmaker.Key{Topic: "conductor", Server: "host1"})
	fmt.Println(addrs)
	// Output: [tcp://10.0.0.1:7000]
}

// The renewal loop a node runs: renew with RegisterMany at a jittered
// interval, at once when the matchmaker says it lost registrations, and
// sooner after a failure.
func ExampleRenewalInterval() {
	m := matchmaker.NewMemory("example-renew")
	defer m.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	const ttl = 30 * time.Second
	entries := []matchmaker.Entry{{Key: matchmaker.Key{Topic: "compute"}, Addr: "tcp://10.0.0.1:7000"}}
	renewals := 0
	for {
		lost := m.Lost() // before registering: a loss during it is not missed
		wait := matchmaker.RenewalInterval(ttl)
		if err := m.RegisterMany(ctx, entries, ttl); err != nil {
			wait = 100 * time.Millisecond // and back off from there
		} else {
			renewals++
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			fmt.Println("renewals:", renewals)
			return
		case <-lost: // re-register at once
		case <-t.C:
		}
		t.Stop()
	}
	// Output: renewals: 1
}

// Show a matchmaker URL only through Redact.
func ExampleRedact() {
	fmt.Println(matchmaker.Redact("redis://relay:s3cret@10.0.0.5:6379/0"))
	fmt.Println(matchmaker.Redact("redis+sentinel://h1:26379,h2:26379/mymaster?sentinel_password=s3cret"))
	// Output:
	// redis://relay:xxxxx@10.0.0.5:6379/0
	// redis+sentinel://h1:26379,h2:26379/mymaster?sentinel_password=xxxxx
}

// Parse a Redis URL to see where it leads; RedisOptions print no secret.
func ExampleParseRedisURL() {
	o, err := matchmaker.ParseRedisURL("redis+cluster://relay:s3cret@10.0.0.5:7000,10.0.0.6:7000")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(o)
	_, err = matchmaker.ParseRedisURL("redis://:s3cret@10.0.0.5:6379/one")
	fmt.Println(err)
	// Output:
	// redis cluster 10.0.0.5:7000,10.0.0.6:7000 as user relay
	// matchmaker: bad url "redis://:xxxxx@10.0.0.5:6379/one": database "one" in the path is not a number >= 0
}

// Route go-redis's own log lines (process-wide) to the process's logger.
func ExampleSetRedisLogger() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	matchmaker.SetRedisLogger(log.With("component", "go-redis"))
	defer matchmaker.SetRedisLogger(nil)
}
