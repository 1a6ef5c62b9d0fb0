package scale

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relay-dev/relay"
	"github.com/relay-dev/relay/actors"
)

// Host is the relay nodes of one host process: Count compute nodes, or the
// control plane (conductors, schedulers, the api node). It starts them
// Parallel at a time, serves, and on BeginLoad sends its share of the
// load until Close.
type Host struct {
	spec HostSpec
	log  *slog.Logger
	rec  *recorder

	nodes []*relay.Node // every node started, in spec order (nil: failed)
	names []string      // the server name of each node ("" for clients)

	ctx    context.Context // ends at stopLoad or Close: stops the load
	cancel context.CancelFunc
	load   sync.Once
	wg     sync.WaitGroup // the load's goroutines
	// churnCtx ends at stopChurn or Close: the churn outlives the rest of
	// the load until every call to a conductor has returned.
	churnCtx    context.Context
	churnCancel context.CancelFunc
	churnWG     sync.WaitGroup

	// seq numbers the fanouts and notifications of the load (1, 2, ...);
	// probe the probes before it (-1, -2, ...).
	seq, probe atomic.Int64
}

// StartHost starts the nodes of spec and returns once each has started or
// failed (the report names the failures). ctx bounds the start.
func StartHost(ctx context.Context, spec HostSpec, log *slog.Logger) (*Host, error) {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	h := &Host{spec: spec, log: log, rec: newRecorder(spec.Name, spec.Role)}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.churnCtx, h.churnCancel = context.WithCancel(context.Background())
	n := spec.Count
	if spec.Role == RoleControl {
		n = spec.Conductors + spec.Schedulers + 1
	}
	h.nodes, h.names = make([]*relay.Node, n), make([]string, n)
	start := time.Now()
	sem := make(chan struct{}, max(spec.Parallel, 1))
	var wg sync.WaitGroup
	errs := make([]error, n)
	for j := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			h.nodes[j], h.names[j], errs[j] = h.startNode(ctx, j)
		})
	}
	wg.Wait()
	started := 0
	h.rec.update(func(r *HostReport) {
		for _, err := range errs {
			if err == nil {
				started++
			} else if len(r.StartErrors) < 10 {
				r.StartErrors = append(r.StartErrors, err.Error())
			}
		}
		r.Nodes, r.StartTook, r.Ready = started, time.Since(start), started == n
	})
	if started == 0 && n > 0 {
		h.Close()
		return nil, fmt.Errorf("scale: %s: no node started: %w", spec.Name, errors.Join(errs...))
	}
	return h, nil
}

// startNode starts node j of the spec and sets it up for its role.
func (h *Host) startNode(ctx context.Context, j int) (*relay.Node, string, error) {
	s := &h.spec
	n, err := relay.Start(ctx, h.nodeOptions(s.addr(j), j)...)
	if err != nil {
		return nil, "", fmt.Errorf("node %d (%s): %w", j, s.addr(j), err)
	}
	name, err := h.setUp(n, j)
	if err != nil {
		n.Close()
		return nil, "", fmt.Errorf("node %d (%s): %w", j, s.addr(j), err)
	}
	return n, name, nil
}

// nodeOptions are the options of node j of the process, bound to addr.
func (h *Host) nodeOptions(addr string, j int) []relay.Option {
	s := &h.spec
	opts := []relay.Option{relay.WithMatchmaker(s.Matchmaker), relay.WithHost(s.Name),
		relay.WithBindAddress(addr), relay.WithRegistrationTTL(s.TTL), relay.WithCallTimeout(s.Timeout),
		relay.WithLogger(h.log.With("node", j)), relay.WithUndelivered(h.rec.undelivered)}
	if s.Heartbeat > 0 {
		opts = append(opts, relay.WithHeartbeat(s.Heartbeat, s.HeartbeatTimeout))
	}
	if s.Proxied {
		opts = append(opts, relay.WithRouterProxy(true), relay.WithPubSub(true))
	}
	return opts
}

// setUp gives node j what its role serves and listens to, and returns its
// server name ("" for a client).
func (h *Host) setUp(n *relay.Node, j int) (string, error) {
	s := &h.spec
	if s.Role == RoleControl {
		if j >= s.Conductors {
			return "", nil // a scheduler or the api: clients
		}
		name := fmt.Sprintf("conductor-%d", j)
		srv, err := n.Serve(relay.Target{Topic: TopicConductor, Server: name})
		if err != nil {
			return "", err
		}
		srv.Handle(MethodReport, func(_ context.Context, r *relay.Request) (any, error) {
			var from string
			return from, r.Decode(&from)
		})
		return name, nil
	}
	name := ComputeName(s.First + j)
	srv, err := n.Serve(relay.Target{Topic: TopicCompute, Server: name})
	if err != nil {
		return "", err
	}
	srv.Handle(MethodConsole, func(context.Context, *relay.Request) (any, error) { return name, nil })
	srv.Handle(MethodBuild, func(context.Context, *relay.Request) (any, error) {
		h.rec.received()
		return nil, nil
	})
	srv.Handle(MethodUpdate, func(_ context.Context, r *relay.Request) (any, error) {
		var st Stamp
		if err := r.Decode(&st); err != nil {
			return nil, err
		}
		h.rec.delivered(true, st)
		return nil, nil
	})
	_, err = n.Listen([]string{TopicEvents}, name, func(_ context.Context, d *relay.Delivery) error {
		var st Stamp
		if err := d.Decode(&st); err != nil {
			return err
		}
		h.rec.delivered(false, st)
		return nil
	})
	return name, err
}

// Report returns what the process saw so far.
func (h *Host) Report() HostReport {
	rep := h.rec.snapshot()
	var dropped uint64
	for _, n := range h.nodes {
		if n == nil {
			continue
		}
		st := n.Stats()
		dropped += st.Malformed + st.UnknownVersion + st.Oversized + st.UnexpectedKind + st.ExpiredRequests +
			st.DroppedReplies + st.DroppedCasts + st.FailedCasts
		addCounters(rep.Counters, st.Stats)
		for _, r := range st.Restarts {
			rep.Restarts += r
		}
	}
	rep.Dropped = dropped
	return rep
}

// addCounters adds the counters of st that are not zero to m, by name.
func addCounters(m map[string]uint64, st actors.Stats) {
	v := reflect.ValueOf(st)
	for i := range v.NumField() {
		if c := v.Field(i).Uint(); c > 0 {
			m[v.Type().Field(i).Name] += c
		}
	}
}

// BeginLoad starts the process's share of the load (once).
func (h *Host) BeginLoad() {
	h.load.Do(func() {
		s := &h.spec
		if s.Role == RoleCompute {
			h.pace(s.CallRate, h.callConductor)
			return
		}
		h.pace(s.APIRate, h.callCompute)
		h.pace(s.CastRate, h.castBuild)
		h.wg.Go(h.fanouts)
		if s.ChurnEvery > 0 {
			h.churnWG.Go(h.churn)
		}
	})
}

// Close stops the load, waits for it, and closes every node.
func (h *Host) Close() {
	h.stopLoad()
	h.stopChurn()
	// Parallel at a time: every node unregisters, and a thousand at once
	// would dial Redis faster than it accepts.
	sem := make(chan struct{}, max(h.spec.Parallel, 1))
	var wg sync.WaitGroup
	for _, n := range h.nodes {
		if n != nil {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				n.Close()
			})
		}
	}
	wg.Wait()
}

// Node returns node j (nil if it did not start): for tests.
func (h *Host) Node(j int) *relay.Node { return h.nodes[j] }
