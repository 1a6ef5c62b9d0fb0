// Package dashboard serves one web page that shows a relay cluster as it
// is now — topics, server nodes, listener pools, router and publisher
// proxies, and each node's rates, latencies, errors and restarts — and
// updates itself (the page polls /api/cluster every second). It is built
// from the matchmaker's registrations and the nodes' $relay.info (see
// package cluster); `node dashboard` runs it.
//
//	d := dashboard.New(dashboard.Config{Node: node, Lister: lister})
//	http.ListenAndServe("127.0.0.1:8080", d)
//
// A Dashboard is safe for concurrent use; it starts no goroutine.
package dashboard

import (
	_ "embed"
	"encoding/json"
	"net/http"
	"reflect"
	"sync"
	"time"

	"github.com/relay-dev/relay"
	"github.com/relay-dev/relay/cluster"
	"github.com/relay-dev/relay/matchmaker"
)

//go:embed page.html
var page []byte

// Config configures a Dashboard.
type Config struct {
	// Node asks the cluster's nodes for their info; it must use the
	// cluster's matchmaker (and router proxies, if the nodes do).
	Node *relay.Node
	// Lister lists the cluster's registrations: the matchmaker.
	Lister matchmaker.Lister
	// Timeout bounds each node's answer (default 1s).
	Timeout time.Duration
}

// Dashboard is the page and its data, an http.Handler:
//
//	/              the page
//	/api/cluster   the cluster now, as JSON (a Snapshot)
type Dashboard struct {
	cfg Config
	mux *http.ServeMux

	// mu guards the fields below.
	mu   sync.Mutex
	last map[string]sample // per node address, for rates
}

// sample is what a node had counted at one moment.
type sample struct {
	at             time.Time
	calls, errors  float64
	seconds        float64
	restarts, drop uint64
}

// Snapshot is what /api/cluster answers: the cluster's View and, per node
// (by address), what its counters say about the last interval.
type Snapshot struct {
	*cluster.View
	Rates map[string]Rates `json:"rates"`
}

// Rates are a node's figures over the interval since the previous
// snapshot (zero on the first).
type Rates struct {
	Calls     float64 `json:"calls_per_s"`    // calls its handlers served
	Errors    float64 `json:"errors_per_s"`   // of which failed
	LatencyMS float64 `json:"latency_ms"`     // mean handler time of those calls
	Restarts  uint64  `json:"restarts"`       // actor restarts since it started
	Dropped   uint64  `json:"dropped"`        // messages dropped since it started
	Metrics   bool    `json:"metrics"`        // whether the node counts calls (metrics interceptors)
	HTTP      string  `json:"http,omitempty"` // where it serves /metrics
}

// New returns a dashboard.
func New(cfg Config) *Dashboard {
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Second
	}
	d := &Dashboard{cfg: cfg, mux: http.NewServeMux(), last: map[string]sample{}}
	d.mux.HandleFunc("/{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(page)
	})
	d.mux.HandleFunc("/api/cluster", d.serveCluster)
	return d
}

// ServeHTTP implements http.Handler.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) { d.mux.ServeHTTP(w, r) }

func (d *Dashboard) serveCluster(w http.ResponseWriter, r *http.Request) {
	regs, err := d.cfg.Lister.List(r.Context())
	if err != nil {
		http.Error(w, "matchmaker: "+err.Error(), http.StatusBadGateway)
		return
	}
	view := cluster.Collect(r.Context(), d.cfg.Node, regs, d.cfg.Timeout)
	snap := Snapshot{View: view, Rates: d.rates(view)}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(snap)
}

// rates computes each node's rates against its previous sample.
func (d *Dashboard) rates(v *cluster.View) map[string]Rates {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string]Rates{}
	seen := map[string]bool{}
	for _, n := range v.Nodes {
		if n.Info == nil {
			continue
		}
		seen[n.Addr] = true
		cur := sampleOf(n.Info, v.At)
		r := Rates{Restarts: cur.restarts, Dropped: cur.drop}
		ms, ok := n.Info.Extra["metrics"]
		r.Metrics = ok && ms != nil
		if h, ok := n.Info.Extra["http"].(string); ok {
			r.HTTP = h
		}
		if prev, ok := d.last[n.Addr]; ok {
			if dt := cur.at.Sub(prev.at).Seconds(); dt > 0 {
				r.Calls = max(cur.calls-prev.calls, 0) / dt
				r.Errors = max(cur.errors-prev.errors, 0) / dt
			}
			if dc := cur.calls - prev.calls; dc > 0 {
				r.LatencyMS = (cur.seconds - prev.seconds) / dc * 1000
			}
		}
		d.last[n.Addr] = cur
		out[n.Addr] = r
	}
	for addr := range d.last {
		if !seen[addr] {
			delete(d.last, addr)
		}
	}
	return out
}

// sampleOf reads a node's counters from its info: the server-side calls
// of the metrics extra (decoded from msgpack as generic maps), restarts
// and drops.
func sampleOf(in *relay.Info, at time.Time) sample {
	s := sample{at: at}
	for _, r := range in.Stats.Restarts {
		s.restarts += uint64(r)
	}
	st := in.Stats
	s.drop = st.Malformed + st.UnknownVersion + st.UnexpectedKind + st.ExpiredRequests + st.DroppedReplies + st.DroppedCasts + st.FailedCasts
	list, _ := in.Extra["metrics"].([]any)
	for _, e := range list {
		m, _ := e.(map[string]any)
		if m["side"] != "server" {
			continue
		}
		s.calls += number(m["calls"])
		s.errors += number(m["errors"])
		s.seconds += number(m["seconds"])
	}
	return s
}

// number converts a msgpack-decoded number to float64.
func number(v any) float64 {
	switch x := reflect.ValueOf(v); {
	case x.CanFloat():
		return x.Float()
	case x.CanInt():
		return float64(x.Int())
	case x.CanUint():
		return float64(x.Uint())
	}
	return 0
}
