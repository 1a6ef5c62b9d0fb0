package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/relay-dev/relay"
)

// ServeTopic is the topic the harness's servers serve.
const ServeTopic = "chaos"

// The kinds of message the load sends, each from a client node of its own
// so that the node's counters speak of that kind alone (calls share a node
// with casts of the same acks setting: a call's failure is its outcome,
// never a counter).
const (
	kindCall   = "call"   // call, no acks
	kindACall  = "acall"  // call, acks
	kindACast  = "acast"  // cast to the bare topic, acks
	kindCast   = "cast"   // cast to a server named by the client, no acks
	kindFanout = "fanout" // fanout to every server of the topic
	kindNotify = "notify" // notification to the servers' listener pool
)

// kindSpec is how the load sends a kind.
type kindSpec struct {
	name, label string
	client      string // the client node that sends it
	weight      int    // its share of the load
}

var kindSpecs = []kindSpec{
	{kindCall, "call, no acks", clientPlain, 20},
	{kindACall, "call, acks", clientAcked, 20},
	{kindACast, "cast, acks", clientAcked, 20},
	{kindCast, "cast, no acks", clientPlain, 20},
	{kindFanout, "fanout", clientFanout, 10},
	{kindNotify, "notification", clientNotify, 10},
}

// isCall reports whether kind is a call.
func isCall(kind string) bool { return kind == kindCall || kind == kindACall }

// The harness's client nodes.
const (
	clientPlain   = "plain"   // calls and casts without acks
	clientAcked   = "acked"   // calls and casts with acks
	clientFanout  = "fanout"  // fanouts
	clientNotify  = "notify"  // notifications
	clientControl = "control" // probes, kill-actor and stats: not counted
)

// loadClients are the clients that send the load, which kill-actor may
// pick.
var loadClients = []string{clientPlain, clientAcked, clientFanout, clientNotify}

// op is one message the load sent and what became of it.
type op struct {
	Kind   string        `json:"kind"`
	Key    string        `json:"key"`
	Server string        `json:"server,omitempty"` // the server a directed cast named
	Start  time.Time     `json:"start"`
	Took   time.Duration `json:"took"`            // until Call, Cast or Notify returned
	Err    string        `json:"err,omitempty"`   // the outcome's label (errLabel); "" for success
	Msg    string        `json:"msg,omitempty"`   // the error's text
	Reply  string        `json:"reply,omitempty"` // a call's reply
	// Unresolved: the call had not returned by its deadline plus the
	// drain's grace.
	Unresolved bool `json:"unresolved,omitempty"`
}

// accepted reports whether the sender took the message (a nil error).
func (o *op) accepted() bool { return o.Err == "" && !o.Unresolved }

// worker sends messages, one at a time.
type worker struct {
	id  int
	rng *rand.Rand

	// mu guards the fields below.
	mu     sync.Mutex
	ops    []op
	flight *op // the message being sent
}

// load drives the clients.
type load struct {
	cfg     *Config
	clients map[string]*relay.Node
	servers []string // server names, for directed casts
	kinds   []kindSpec
	workers []*worker

	stop chan struct{}  // closed to stop the load
	wg   sync.WaitGroup // the workers and the pacer

	// mu guards skipped.
	mu      sync.Mutex
	skipped int // ticks of the pacer that found every worker busy
}

// newLoad prepares the load; start starts it.
func newLoad(cfg *Config, clients map[string]*relay.Node, servers []string) *load {
	l := &load{cfg: cfg, clients: clients, servers: servers, stop: make(chan struct{})}
	for _, k := range kindSpecs {
		if k.name == kindFanout && cfg.Mode == ModeRouter {
			continue // fanout in router-proxy mode needs pub/sub
		}
		l.kinds = append(l.kinds, k)
	}
	for i := range cfg.Workers {
		l.workers = append(l.workers, &worker{id: i, rng: rand.New(rand.NewPCG(uint64(cfg.Seed), uint64(i)+1))})
	}
	return l
}

// start starts the pacer and the workers.
func (l *load) start() {
	tokens := make(chan struct{}, len(l.workers))
	l.wg.Add(1 + len(l.workers))
	go l.pace(tokens)
	for _, w := range l.workers {
		go l.run(w, tokens)
	}
}

// pace offers a token per message at the configured rate.
// Runs in its own goroutine.
func (l *load) pace(tokens chan<- struct{}) {
	defer l.wg.Done()
	tick := time.NewTicker(time.Second / time.Duration(l.cfg.Rate))
	defer tick.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-tick.C:
		}
		select {
		case tokens <- struct{}{}:
		default:
			l.mu.Lock()
			l.skipped++
			l.mu.Unlock()
		}
	}
}

// run sends a message per token until the load stops.
// Runs in its own goroutine.
func (l *load) run(w *worker, tokens <-chan struct{}) {
	defer l.wg.Done()
	for seq := 0; ; seq++ {
		select {
		case <-l.stop:
			return
		case <-tokens:
		}
		k := l.pick(w.rng)
		o := &op{Kind: k.name, Key: fmt.Sprintf("%s/%d/%d", k.name, w.id, seq), Start: time.Now()}
		if k.name == kindCast {
			o.Server = l.servers[w.rng.IntN(len(l.servers))]
		}
		work := time.Duration(w.rng.Int64N(int64(l.cfg.Work) + 1))
		w.mu.Lock()
		w.flight = o
		w.mu.Unlock()
		reply, err := l.send(l.clients[k.client], o, Op{Key: o.Key, Work: work})
		w.mu.Lock()
		o.Took, o.Reply = time.Since(o.Start), reply
		if err != nil {
			o.Err, o.Msg = errLabel(err), err.Error()
		}
		if w.flight == o { // not given up on as unresolved
			w.ops = append(w.ops, *o)
			w.flight = nil
		}
		w.mu.Unlock()
	}
}

// pick draws a kind by weight.
func (l *load) pick(rng *rand.Rand) kindSpec {
	total := 0
	for _, k := range l.kinds {
		total += k.weight
	}
	n := rng.IntN(total)
	for _, k := range l.kinds {
		if n -= k.weight; n < 0 {
			return k
		}
	}
	return l.kinds[len(l.kinds)-1]
}

// send sends o's message (o is read, not written) with n and returns a
// call's reply.
func (l *load) send(n *relay.Node, o *op, arg Op) (reply string, err error) {
	timeout := l.cfg.CastTimeout
	if isCall(o.Kind) {
		timeout = l.cfg.CallTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	switch o.Kind {
	case kindCall, kindACall:
		err = n.Call(ctx, relay.Target{Topic: ServeTopic}, MethodApply, arg, &reply)
	case kindACast:
		err = n.Cast(ctx, relay.Target{Topic: ServeTopic}, MethodApply, arg)
	case kindCast:
		err = n.Cast(ctx, relay.Target{Topic: ServeTopic, Server: o.Server}, MethodApply, arg)
	case kindFanout:
		err = n.Cast(ctx, relay.Target{Topic: ServeTopic, Fanout: true}, MethodApply, arg)
	case kindNotify:
		err = n.Notify(ctx, relay.Notification{Topic: NotifyTopic, EventType: MethodApply, Payload: arg})
	default:
		err = fmt.Errorf("chaos: unknown kind %q", o.Kind)
	}
	return reply, err
}

// finish stops the load and waits up to grace for the workers' messages in
// flight to end; those still in flight then are recorded as unresolved.
// It returns every message sent, and a function that waits for the
// stragglers (after their nodes are closed).
func (l *load) finish(grace time.Duration) (ops []op, wait func()) {
	close(l.stop)
	done := make(chan struct{})
	go func() { // ends when every worker has
		l.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(grace):
	}
	for _, w := range l.workers {
		w.mu.Lock()
		if w.flight != nil {
			o := *w.flight
			o.Unresolved, o.Took = true, time.Since(o.Start)
			w.ops = append(w.ops, o)
			w.flight = nil
		}
		ops = append(ops, w.ops...)
		w.mu.Unlock()
	}
	return ops, func() { <-done }
}

// errLabel names an error for the tables: the relay sentinel it matches,
// or a RemoteError's code, or the standard code relay gives it, or
// "untyped" for an error relay does not classify.
func errLabel(err error) string {
	var re *relay.RemoteError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &re):
		return "RemoteError " + re.Code
	}
	for _, s := range []struct {
		err  error
		name string
	}{
		{relay.ErrTimeout, "ErrTimeout"}, {relay.ErrNoServers, "ErrNoServers"},
		{relay.ErrBackPressure, "ErrBackPressure"}, {relay.ErrClosed, "ErrClosed"},
		{relay.ErrNoSuchMethod, "ErrNoSuchMethod"}, {relay.ErrBadTarget, "ErrBadTarget"},
		{relay.ErrTooManyConnections, "ErrTooManyConnections"}, {relay.ErrNodeFailed, "ErrNodeFailed"},
		{context.DeadlineExceeded, "DeadlineExceeded"}, {context.Canceled, "Canceled"},
	} {
		if errors.Is(err, s.err) {
			return s.name
		}
	}
	if code := relay.CodeOf(err); code != relay.CodeUnknown {
		return "code " + code
	}
	return untyped
}

// untyped is the label of an error relay does not classify.
const untyped = "untyped"
