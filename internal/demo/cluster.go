package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/relay-dev/relay"
)

// Demo settings.
const (
	demoTopic = "compute"
	// demoCallTimeout bounds each call of the demo that is not about timeouts.
	demoCallTimeout = 5 * time.Second
	// castWait bounds the wait for casts to take effect.
	castWait = 5 * time.Second
)

// demoHosts are the server nodes RunDemo starts.
var demoHosts = []string{"alpha", "beta", "gamma"}

// Section titles RunDemo prints, in order.
const (
	SectionCluster    = "1. The cluster"
	SectionRoundRobin = "2. Round-robin calls"
	SectionDirected   = "3. Directed calls"
	SectionCasts      = "4. Casts"
	SectionTimeout    = "5. A timeout"
	SectionRemoteErr  = "6. A remote error"
	SectionNoMethod   = "7. An unknown method"
	SectionShutdown   = "8. Shutting down"
)

// cluster is what RunDemo runs: three servers and a client in one process.
type cluster struct {
	w         io.Writer
	servers   []*relay.Node
	endpoints map[string]*Endpoint // by host
	client    *relay.Node
}

// RunDemo starts, inside this process and on a fresh in-memory matchmaker,
// three server nodes ("alpha", "beta", "gamma") that serve the demo
// Endpoint on topic "compute", and a client node; it then shows round-robin
// calls, directed calls, casts, a timeout, a remote error and an unknown
// method, explaining each step on w, and closes every node. It returns an
// error when a step does not behave as described, or when ctx ends.
func RunDemo(ctx context.Context, w io.Writer) (err error) {
	c := &cluster{w: w, endpoints: make(map[string]*Endpoint)}
	defer func() {
		if cerr := c.close(); err == nil {
			err = cerr
		}
	}()
	steps := []func(context.Context) error{
		c.start, c.roundRobin, c.directed, c.casts, c.timeout, c.remoteError, c.unknownMethod,
	}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return err
		}
	}
	c.section(SectionShutdown)
	c.say("Closing the client and the three servers: each node unregisters, finishes")
	c.say("the requests it is handling, and closes its sockets.")
	return nil
}

func (c *cluster) say(format string, args ...any) { fmt.Fprintf(c.w, "  "+format+"\n", args...) }

func (c *cluster) section(title string) {
	fmt.Fprintf(c.w, "\n== %s ==\n", title)
}

// start starts the servers and the client.
func (c *cluster) start(ctx context.Context) error {
	c.section(SectionCluster)
	mm := "memory://demo-" + randomName()
	c.say("Starting 3 server nodes and 1 client node in this process. They find each")
	c.say("other through an in-memory matchmaker (%s), a name service", mm)
	c.say("that maps a topic to the addresses of the servers serving it. Messages")
	c.say("travel over real ZeroMQ tcp sockets on 127.0.0.1.")
	for _, host := range demoHosts {
		n, err := relay.Start(ctx, relay.WithHost(host), relay.WithMatchmaker(mm))
		if err != nil {
			return fmt.Errorf("demo: start server %s: %w", host, err)
		}
		c.servers = append(c.servers, n)
		srv, err := n.Serve(relay.Target{Topic: demoTopic})
		if err != nil {
			return fmt.Errorf("demo: %s: serve %s: %w", host, demoTopic, err)
		}
		ep := &Endpoint{Host: host}
		ep.Register(srv)
		c.endpoints[host] = ep
		c.say("server %-5s listens on %s and serves topic %q", host, n.Endpoint(), demoTopic)
	}
	c.say("Each server keeps its own counter (starting at 0) and answers the methods")
	c.say("add, subtract, append, sleep and get.")
	client, err := relay.Start(ctx, relay.WithHost("client"), relay.WithMatchmaker(mm))
	if err != nil {
		return fmt.Errorf("demo: start client: %w", err)
	}
	c.client = client
	c.say("client node started; it sends every request below.")
	return nil
}

// call makes one call bounded by demoCallTimeout.
func (c *cluster) call(ctx context.Context, t relay.Target, method string, args, reply any) error {
	ctx, cancel := context.WithTimeout(ctx, demoCallTimeout)
	defer cancel()
	return c.client.Call(ctx, t, method, args, reply)
}

// get asks host for its state with a directed call.
func (c *cluster) get(ctx context.Context, host string) (State, error) {
	var st State
	if err := c.call(ctx, relay.Target{Topic: demoTopic, Server: host}, "get", nil, &st); err != nil {
		return st, fmt.Errorf("demo: get from %s: %w", host, err)
	}
	return st, nil
}

// showStates prints every server's counter (and string, when set).
func (c *cluster) showStates(ctx context.Context) error {
	for _, host := range demoHosts {
		st, err := c.get(ctx, host)
		if err != nil {
			return err
		}
		line := fmt.Sprintf("%-5s counter = %d", st.Host, st.Int)
		if st.Str != "" {
			line += fmt.Sprintf(", text = %q", st.Str)
		}
		c.say("  %s", line)
	}
	return nil
}

// roundRobin sends six calls to the bare topic and shows who answered.
func (c *cluster) roundRobin(ctx context.Context) error {
	c.section(SectionRoundRobin)
	c.say("A bare target names only the topic (%q): any one server may answer.", demoTopic)
	c.say("The client picks the next server in turn (round-robin). We call \"get\",")
	c.say("which returns the answering server's name and counter, 6 times:")
	seen := make(map[string]int)
	for i := 1; i <= 6; i++ {
		var st State
		if err := c.call(ctx, relay.Target{Topic: demoTopic}, "get", nil, &st); err != nil {
			return fmt.Errorf("demo: round-robin call %d: %w", i, err)
		}
		seen[st.Host]++
		c.say("call %d: get -> topic %q  => answered by %s", i, demoTopic, st.Host)
	}
	for _, host := range demoHosts {
		if seen[host] != 2 {
			return fmt.Errorf("demo: round-robin: %s answered %d of 6 calls, want 2 (answers: %v)", host, seen[host], seen)
		}
	}
	c.say("Each of the 3 servers answered 2 of the 6 calls, in rotation.")
	return nil
}

// directed sends calls to beta only and shows that only beta changed.
func (c *cluster) directed(ctx context.Context) error {
	c.section(SectionDirected)
	c.say("A directed target also names a server (topic %q, server \"beta\"):", demoTopic)
	c.say("only that server gets the call. We call add 5 on beta 3 times:")
	beta := relay.Target{Topic: demoTopic, Server: "beta"}
	for i := 1; i <= 3; i++ {
		var n int64
		if err := c.call(ctx, beta, "add", 5, &n); err != nil {
			return fmt.Errorf("demo: directed add %d: %w", i, err)
		}
		c.say("call %d: add 5 -> beta  => beta's counter is now %d", i, n)
	}
	c.say("Every server's counter, asked with a directed get:")
	if err := c.showStates(ctx); err != nil {
		return err
	}
	if got := c.endpoints["beta"].State().Int; got != 15 {
		return fmt.Errorf("demo: directed: beta's counter is %d, want 15", got)
	}
	c.say("Only beta's counter changed.")
	return nil
}

// casts sends one-way messages and shows their effect.
func (c *cluster) casts(ctx context.Context) error {
	c.section(SectionCasts)
	c.say("A cast is one-way: the client sends it and does not wait for an answer.")
	c.say("We cast add 100 to the bare topic 3 times (round-robin again), and cast")
	c.say("append \"hello\" to gamma only:")
	bare := relay.Target{Topic: demoTopic}
	for i := 1; i <= 3; i++ {
		if err := c.client.Cast(ctx, bare, "add", 100); err != nil {
			return fmt.Errorf("demo: cast %d: %w", i, err)
		}
		c.say("cast %d: add 100 -> topic %q  (sent; no reply comes back)", i, demoTopic)
	}
	if err := c.client.Cast(ctx, relay.Target{Topic: demoTopic, Server: "gamma"}, "append", "hello"); err != nil {
		return fmt.Errorf("demo: cast append: %w", err)
	}
	c.say("cast 4: append \"hello\" -> gamma  (sent; no reply comes back)")
	c.say("Casts arrive a moment later. Waiting until all 4 have been handled...")
	deadline := time.Now().Add(castWait)
	for !c.castsLanded() {
		if time.Now().After(deadline) {
			return fmt.Errorf("demo: casts not all handled after %v", castWait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	c.say("Every server's counter now (each got one add 100; gamma also got the text):")
	return c.showStates(ctx)
}

// castsLanded reports whether each server has handled one add cast and
// gamma the append.
func (c *cluster) castsLanded() bool {
	for _, host := range demoHosts {
		if c.endpoints[host].Casts() != 1 {
			return false
		}
	}
	return c.endpoints["gamma"].State().Str == "hello"
}

// timeout calls a slow method with a short deadline.
func (c *cluster) timeout(ctx context.Context) error {
	c.section(SectionTimeout)
	c.say("Every call has a deadline. We call sleep 2000 (the server sleeps 2000 ms")
	c.say("before answering) on alpha, but give the call only 300 ms:")
	tctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := c.client.Call(tctx, relay.Target{Topic: demoTopic, Server: "alpha"}, "sleep", 2000, nil)
	took := time.Since(start)
	if !errors.Is(err, relay.ErrTimeout) {
		return fmt.Errorf("demo: timeout: call returned %v, want ErrTimeout", err)
	}
	c.say("call: sleep 2000 -> alpha  => error after %v:", took.Round(time.Millisecond))
	c.say("  %v", err)
	c.say("The caller gets relay.ErrTimeout at its deadline instead of waiting 2 s;")
	c.say("the deadline travels with the call, so alpha stops sleeping too.")
	return nil
}

// remoteError makes a handler fail.
func (c *cluster) remoteError(ctx context.Context) error {
	c.section(SectionRemoteErr)
	c.say("When a handler returns an error, the caller gets it as *relay.RemoteError")
	c.say("with a code and a message. Counters may not go below zero; alpha's is 100.")
	c.say("We call subtract 1000 on alpha:")
	err := c.call(ctx, relay.Target{Topic: demoTopic, Server: "alpha"}, "subtract", 1000, nil)
	var re *relay.RemoteError
	if !errors.As(err, &re) {
		return fmt.Errorf("demo: remote error: call returned %v, want a *relay.RemoteError", err)
	}
	c.say("call: subtract 1000 -> alpha  => remote error")
	c.say("  code:    %s", re.Code)
	c.say("  message: %s", re.Message)
	return nil
}

// unknownMethod calls a method no server has.
func (c *cluster) unknownMethod(ctx context.Context) error {
	c.section(SectionNoMethod)
	c.say("Calling a method the server does not have is an error too. We call")
	c.say("multiply 3 on the topic:")
	err := c.call(ctx, relay.Target{Topic: demoTopic}, "multiply", 3, nil)
	if !errors.Is(err, relay.ErrNoSuchMethod) {
		return fmt.Errorf("demo: unknown method: call returned %v, want ErrNoSuchMethod", err)
	}
	c.say("call: multiply 3 -> topic %q  => relay.ErrNoSuchMethod:", demoTopic)
	c.say("  %v", err)
	return nil
}

// close closes the client, then the servers, and joins their errors.
func (c *cluster) close() error {
	var errs []error
	if c.client != nil {
		errs = append(errs, c.client.Close())
	}
	for _, n := range c.servers {
		errs = append(errs, n.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("demo: close: %w", err)
	}
	return nil
}

// randomName returns 8 random bytes in hex.
func randomName() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return strings.ToLower(hex.EncodeToString(b))
}
