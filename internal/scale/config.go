package scale

import (
	"fmt"
	"io"
	"time"

	"github.com/relay-dev/relay/internal/flagcheck"
)

// Modes are the topologies a run can use.
const (
	// ModeDirect: every node binds a ROUTER and callers reach servers
	// directly; fanouts and notifications are unicast to each receiver.
	ModeDirect = "direct"
	// ModeProxied: calls and casts go through k router proxies, fanouts
	// and notifications through central publisher proxies and one local
	// publisher proxy per host process (two-level fanout).
	ModeProxied = "proxied"
)

// Modes lists the modes, in the order `node scale -h` shows them.
var Modes = []string{ModeDirect, ModeProxied}

// Limits of a run: addresses are 127.(100+p).x.y for host process p.
const (
	maxProcs       = 100
	maxNodesPerHst = 60000
)

// Config is one run. DefaultConfig fills it in but for NodeBin.
type Config struct {
	Mode  string // ModeDirect or ModeProxied
	Nodes int    // compute nodes (N), one relay node each
	Procs int    // host processes the compute nodes are spread over
	// Conductors and Schedulers are the control plane's servers, in the
	// control process (the one that runs Run).
	Conductors, Schedulers int
	Routers                int // router proxy processes (proxied)
	Publishers             int // central publisher proxy processes (proxied); plus one local one per host process
	Duration               time.Duration
	// CallRate is the compute → conductor calls per second, all computes
	// together; APIRate the api → compute directed calls per second;
	// CastRate the scheduler → compute directed casts per second.
	CallRate, APIRate, CastRate int
	// FanoutEvery is how often a scheduler sends a fanout to every
	// compute, and the api a notification that every compute listens to.
	FanoutEvery time.Duration
	// ChurnEvery is how often, during the load, a conductor joins and the
	// one that joined before leaves (0: no churn).
	ChurnEvery time.Duration
	// StartTimeout bounds the registration storm: from the launch of the
	// host processes until every compute answers a directed call.
	StartTimeout time.Duration
	TTL          time.Duration // registration TTL of every node and proxy
	CallTimeout  time.Duration // deadline of each call, cast, fanout and notification
	// Parallel is how many nodes a host process starts at once.
	Parallel int
	// Heartbeat and HeartbeatTimeout are every node's ZMTP heartbeats
	// (relay.WithHeartbeat); the proxies keep relay's default.
	Heartbeat, HeartbeatTimeout time.Duration

	NodeBin string    // the node binary that runs the host and proxy processes
	Dir     string    // logs and reports; "": a new temporary directory
	Log     io.Writer // progress lines; nil: none
}

// DefaultConfig returns the defaults of `node scale`.
func DefaultConfig() Config {
	return Config{
		Mode:         ModeDirect,
		Nodes:        1000,
		Procs:        4,
		Conductors:   3,
		Schedulers:   2,
		Routers:      2,
		Publishers:   1,
		Duration:     30 * time.Second,
		CallRate:     200,
		APIRate:      100,
		CastRate:     100,
		FanoutEvery:  2 * time.Second,
		ChurnEvery:   3 * time.Second,
		StartTimeout: 3 * time.Minute,
		TTL:          30 * time.Second,
		CallTimeout:  5 * time.Second,
		Parallel:     32,
		// relay's defaults
		Heartbeat:        time.Second,
		HeartbeatTimeout: 5 * time.Second,
	}
}

// validate checks c and names the first bad field as the flag that sets it
// in `node scale`.
func (c *Config) validate() error {
	v := flagcheck.New("scale")
	flagcheck.OneOf(v, "mode", c.Mode, Modes)
	flagcheck.AtLeast(v, "nodes", c.Nodes, 1)
	flagcheck.Between(v, "procs", c.Procs, 1, maxProcs)
	v.Bad(c.Procs > c.Nodes, "procs", "%d host processes for %d nodes: want at most one process per node", c.Procs, c.Nodes)
	if v.Err() == nil { // c.Procs >= 1
		perHost := (c.Nodes + c.Procs - 1) / c.Procs
		v.Bad(perHost > maxNodesPerHst, "procs", "%d nodes per process is more than %d: raise --procs", perHost, maxNodesPerHst)
	}
	flagcheck.Between(v, "conductors", c.Conductors, 1, 250)
	flagcheck.Between(v, "schedulers", c.Schedulers, 1, 250)
	if c.Mode == ModeProxied {
		v.Bad(c.Routers < 1 || c.Routers > 250, "routers", "want 1 to 250 in proxied mode, got %d", c.Routers)
		v.Bad(c.Publishers < 1 || c.Publishers > 250, "publishers", "want 1 to 250 in proxied mode, got %d", c.Publishers)
	}
	flagcheck.AtLeast(v, "duration", c.Duration, time.Second)
	flagcheck.NotNegative(v, "call-rate", c.CallRate)
	flagcheck.NotNegative(v, "api-rate", c.APIRate)
	flagcheck.NotNegative(v, "cast-rate", c.CastRate)
	flagcheck.AtLeast(v, "fanout-every", c.FanoutEvery, 100*time.Millisecond)
	v.Bad(c.ChurnEvery != 0 && c.ChurnEvery < 100*time.Millisecond, "churn-every", "want 0 (no churn) or at least 100ms, got %v", c.ChurnEvery)
	flagcheck.AtLeast(v, "start-timeout", c.StartTimeout, time.Second)
	flagcheck.AtLeast(v, "ttl", c.TTL, time.Second)
	flagcheck.AtLeast(v, "call-timeout", c.CallTimeout, 10*time.Millisecond)
	flagcheck.Positive(v, "heartbeat", c.Heartbeat)
	v.Bad(c.HeartbeatTimeout < c.Heartbeat, "heartbeat-timeout", "want at least --heartbeat (%v), got %v", c.Heartbeat, c.HeartbeatTimeout)
	flagcheck.AtLeast(v, "parallel", c.Parallel, 1)
	v.Missing(c.NodeBin == "", "node binary to run")
	return v.Err()
}

// logf prints a progress line.
func (c *Config) logf(format string, args ...any) {
	if c.Log != nil {
		fmt.Fprintf(c.Log, format+"\n", args...)
	}
}
