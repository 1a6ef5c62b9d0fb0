// Package metrics exports relay's metrics to Prometheus
// (github.com/prometheus/client_golang): messages by kind, target and
// outcome and call latencies, counted by a client and a server
// interceptor; and, read from each node and proxy at every scrape, pending
// calls, queue depths, restarts, dropped messages by reason, resends,
// duplicates, acks, cancellations, matchmaker operations and errors, and
// router-proxy forwarding. A service that does not import it pays nothing.
//
//	m := metrics.New()
//	node, err := relay.Start(ctx, m.Options()...)
//	m.AddNode(node)
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(m)                                  // or your own registry
//	http.Handle("/", metrics.Handler(reg, node.Ready))   // /metrics, /healthz, /debug/pprof
//
// The metric names are listed in README.md ("Observe"). A Metrics is safe
// for concurrent use.
package metrics

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relay-dev/relay"
	"github.com/relay-dev/relay/proxy"
)

// Metrics is relay's collectors: register it on a prometheus.Registerer.
type Metrics struct {
	messages *prometheus.CounterVec
	latency  *prometheus.HistogramVec

	// mu guards the fields below.
	mu      sync.Mutex
	nodes   []*relay.Node
	routers []namedRouter
	methods map[methodKey]*methodStats
}

type namedRouter struct {
	name string
	p    *proxy.Router
}

type methodKey struct {
	side, topic, method string
}

// methodStats is what the node info says of one method (for the
// dashboard): how many, how many failed, their total time.
type methodStats struct {
	Calls   uint64  `msgpack:"calls" json:"calls"`
	Errors  uint64  `msgpack:"errors" json:"errors"`
	Seconds float64 `msgpack:"seconds" json:"seconds"` // total duration of the calls
}

// MethodStats is one method's entry in the node info's "metrics" extra.
type MethodStats struct {
	Side   string `msgpack:"side" json:"side"` // "client" or "server"
	Topic  string `msgpack:"topic" json:"topic"`
	Method string `msgpack:"method" json:"method"`
	methodStats
}

// New returns collectors with nothing counted yet.
func New() *Metrics {
	return &Metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relay_messages_total",
			Help: "Messages sent (side client) and handled (side server), by kind (call, cast, fanout, notify), target and outcome (ok, or the error code).",
		}, []string{"side", "kind", "exchange", "topic", "method", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "relay_call_duration_seconds",
			Help:    "Duration of calls: from Call to its outcome (side client), of the handler (side server).",
			Buckets: prometheus.ExponentialBuckets(25e-6, 2.5, 14), // 25µs … 3.7 min
		}, []string{"side", "exchange", "topic", "method"}),
		methods: map[methodKey]*methodStats{},
	}
}

// Options returns the node options that install m's interceptors.
func (m *Metrics) Options() []relay.Option {
	return []relay.Option{relay.WithClientInterceptor(m.ClientInterceptor), relay.WithServerInterceptor(m.ServerInterceptor)}
}

// ClientInterceptor counts what a node sends, and times its calls.
func (m *Metrics) ClientInterceptor(ctx context.Context, info *relay.CallInfo, args, reply any, next relay.Invoker) error {
	start := time.Now()
	err := next(ctx, info, args, reply)
	m.observe("client", info.Kind, info.Target, info.Method, err, time.Since(start))
	return err
}

// ServerInterceptor counts what a node's handlers (and listeners) handle,
// and times its handlers of calls.
func (m *Metrics) ServerInterceptor(ctx context.Context, req *relay.Request, next relay.Handler) (any, error) {
	start := time.Now()
	res, err := next(ctx, req)
	m.observe("server", req.Kind, req.Target, req.Method, err, time.Since(start))
	return res, err
}

func (m *Metrics) observe(side string, kind relay.Kind, t relay.Target, method string, err error, d time.Duration) {
	outcome := "ok"
	if err != nil {
		outcome = relay.CodeOf(err)
	}
	m.messages.WithLabelValues(side, string(kind), t.Exchange, t.Topic, method, outcome).Inc()
	if kind != relay.KindCall {
		return
	}
	m.latency.WithLabelValues(side, t.Exchange, t.Topic, method).Observe(d.Seconds())
	m.mu.Lock()
	k := methodKey{side, t.Topic, method}
	s := m.methods[k]
	if s == nil {
		s = &methodStats{}
		m.methods[k] = s
	}
	s.Calls++
	if err != nil {
		s.Errors++
	}
	s.Seconds += d.Seconds()
	m.mu.Unlock()
}

// AddNode adds n's counters and gauges to what m collects, and m's counts
// by method to n's Info (Extra "metrics"). Use one Metrics per node to
// keep the counts by method of nodes apart.
func (m *Metrics) AddNode(n *relay.Node) {
	m.mu.Lock()
	m.nodes = append(m.nodes, n)
	m.mu.Unlock()
	n.AddInfo("metrics", func() any { return m.Methods() })
}

// AddRouterProxy adds a router proxy's forwarding counts, labelled name.
func (m *Metrics) AddRouterProxy(name string, p *proxy.Router) {
	m.mu.Lock()
	m.routers = append(m.routers, namedRouter{name, p})
	m.mu.Unlock()
}

// Methods returns the calls counted so far, by side, topic and method.
func (m *Metrics) Methods() []MethodStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]MethodStats, 0, len(m.methods))
	for k, s := range m.methods {
		out = append(out, MethodStats{Side: k.side, Topic: k.topic, Method: k.method, methodStats: *s})
	}
	return out
}

// Descriptions of the metrics read from nodes and proxies at each scrape.
var (
	labelsNode         = []string{"node"}
	descPending        = prometheus.NewDesc("relay_pending_calls", "Calls of the node waiting for their answers.", labelsNode, nil)
	descRunning        = prometheus.NewDesc("relay_handlers_running", "Handlers running now.", labelsNode, nil)
	descQueued         = prometheus.NewDesc("relay_handler_queue_depth", "Requests waiting for a free handler.", labelsNode, nil)
	descRestarts       = prometheus.NewDesc("relay_actor_restarts_total", "Restarts of the node's actors by their supervisor.", []string{"node", "actor"}, nil)
	descDropped        = prometheus.NewDesc("relay_dropped_messages_total", "Messages dropped or refused, by reason.", []string{"node", "reason"}, nil)
	descResends        = prometheus.NewDesc("relay_resends_total", "Messages sent again for want of an ACK or an answer.", labelsNode, nil)
	descFailovers      = prometheus.NewDesc("relay_failovers_total", "Calls with acks resent to another server of their topic, theirs gone.", labelsNode, nil)
	descDuplicates     = prometheus.NewDesc("relay_duplicates_total", "Messages received again (resent) and handled once.", labelsNode, nil)
	descAcks           = prometheus.NewDesc("relay_acks_total", "ACKs sent (direction sent) and received.", []string{"node", "direction"}, nil)
	descCancelled      = prometheus.NewDesc("relay_cancelled_calls_total", "Calls cancelled by their caller while their handler ran.", labelsNode, nil)
	descPanics         = prometheus.NewDesc("relay_handler_panics_total", "Handler panics, answered as errors.", labelsNode, nil)
	descLoopFailures   = prometheus.NewDesc("relay_socket_loop_failures_total", "Socket loops that failed (their actor restarted).", labelsNode, nil)
	descMMOps          = prometheus.NewDesc("relay_matchmaker_operations_total", "Matchmaker operations, by operation.", []string{"node", "op"}, nil)
	descMMErrors       = prometheus.NewDesc("relay_matchmaker_errors_total", "Failed matchmaker operations, by operation.", []string{"node", "op"}, nil)
	descUptime         = prometheus.NewDesc("relay_uptime_seconds", "Time since the node started.", labelsNode, nil)
	descInfo           = prometheus.NewDesc("relay_node_info", "Always 1: the node's release, protocol and endpoint.", []string{"node", "version", "protocol", "endpoint"}, nil)
	descRouterMessages = prometheus.NewDesc("relay_router_proxy_messages_total", "Requests a router proxy routed, refused (no such server connected) or dropped.", []string{"proxy", "result"}, nil)
)

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	m.messages.Describe(ch)
	m.latency.Describe(ch)
	for _, d := range []*prometheus.Desc{descPending, descRunning, descQueued, descRestarts, descDropped, descResends, descFailovers,
		descDuplicates, descAcks, descCancelled, descPanics, descLoopFailures, descMMOps, descMMErrors, descUptime,
		descInfo, descRouterMessages} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.messages.Collect(ch)
	m.latency.Collect(ch)
	m.mu.Lock()
	nodes, routers := append([]*relay.Node(nil), m.nodes...), append([]namedRouter(nil), m.routers...)
	m.mu.Unlock()
	for _, n := range nodes {
		collectNode(ch, n)
	}
	for _, r := range routers {
		routed, refused, dropped := r.p.Counts()
		for result, v := range map[string]uint64{"routed": routed, "refused": refused, "dropped": dropped} {
			ch <- prometheus.MustNewConstMetric(descRouterMessages, prometheus.CounterValue, float64(v), r.name, result)
		}
	}
}

func collectNode(ch chan<- prometheus.Metric, n *relay.Node) {
	s, host := n.Stats(), n.Host()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{host}, labels...)...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), append([]string{host}, labels...)...)
	}
	gauge(descPending, float64(s.Pending))
	gauge(descRunning, float64(s.Handlers))
	gauge(descQueued, float64(s.Queued))
	for actor, r := range s.Restarts {
		counter(descRestarts, uint64(r), actor)
	}
	for reason, v := range map[string]uint64{
		"malformed": s.Malformed, "unknown_version": s.UnknownVersion, "oversized": s.Oversized, "unexpected_kind": s.UnexpectedKind,
		"expired": s.ExpiredRequests, "reply_undeliverable": s.DroppedReplies, "cast_unsent": s.DroppedCasts,
		"late_reply": s.LateReplies, "failed_cast": s.FailedCasts,
		"refused": s.Refused, "untrusted_registration": s.Untrusted, "stray_reply": s.StrayReplies,
	} {
		counter(descDropped, v, reason)
	}
	counter(descResends, s.Resends)
	counter(descFailovers, s.Failovers)
	counter(descDuplicates, s.Duplicates)
	counter(descAcks, s.AcksSent, "sent")
	counter(descAcks, s.AcksReceived, "received")
	counter(descCancelled, s.Cancelled)
	counter(descPanics, s.HandlerPanics)
	counter(descLoopFailures, s.LoopFailures)
	for op, v := range s.MatchmakerOps {
		counter(descMMOps, v, op)
		counter(descMMErrors, s.MatchmakerErrors[op], op)
	}
	in := n.Info()
	gauge(descUptime, in.Uptime)
	gauge(descInfo, 1, in.Version, strconv.Itoa(in.Protocol), in.Endpoint)
}
