package scale

import (
	"fmt"
	"io"
	"time"
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
	bad := func(flag, format string, args ...any) error {
		return fmt.Errorf("scale: --%s: %s", flag, fmt.Sprintf(format, args...))
	}
	switch {
	case c.Mode != ModeDirect && c.Mode != ModeProxied:
		return bad("mode", "%q is not one of %v", c.Mode, Modes)
	case c.Nodes < 1:
		return bad("nodes", "want at least 1, got %d", c.Nodes)
	case c.Procs < 1 || c.Procs > maxProcs:
		return bad("procs", "want 1 to %d, got %d", maxProcs, c.Procs)
	case c.Procs > c.Nodes:
		return bad("procs", "%d host processes for %d nodes: want at most one process per node", c.Procs, c.Nodes)
	case (c.Nodes+c.Procs-1)/c.Procs > maxNodesPerHst:
		return bad("procs", "%d nodes per process is more than %d: raise --procs", (c.Nodes+c.Procs-1)/c.Procs, maxNodesPerHst)
	case c.Conductors < 1 || c.Conductors > 250:
		return bad("conductors", "want 1 to 250, got %d", c.Conductors)
	case c.Schedulers < 1 || c.Schedulers > 250:
		return bad("schedulers", "want 1 to 250, got %d", c.Schedulers)
	case c.Mode == ModeProxied && (c.Routers < 1 || c.Routers > 250):
		return bad("routers", "want 1 to 250 in proxied mode, got %d", c.Routers)
	case c.Mode == ModeProxied && (c.Publishers < 1 || c.Publishers > 250):
		return bad("publishers", "want 1 to 250 in proxied mode, got %d", c.Publishers)
	case c.Duration < time.Second:
		return bad("duration", "want at least 1s, got %v", c.Duration)
	case c.CallRate < 0:
		return bad("call-rate", "must not be negative, got %d", c.CallRate)
	case c.APIRate < 0:
		return bad("api-rate", "must not be negative, got %d", c.APIRate)
	case c.CastRate < 0:
		return bad("cast-rate", "must not be negative, got %d", c.CastRate)
	case c.FanoutEvery < 100*time.Millisecond:
		return bad("fanout-every", "want at least 100ms, got %v", c.FanoutEvery)
	case c.ChurnEvery != 0 && c.ChurnEvery < 100*time.Millisecond:
		return bad("churn-every", "want 0 (no churn) or at least 100ms, got %v", c.ChurnEvery)
	case c.StartTimeout < time.Second:
		return bad("start-timeout", "want at least 1s, got %v", c.StartTimeout)
	case c.TTL < time.Second:
		return bad("ttl", "want at least 1s, got %v", c.TTL)
	case c.CallTimeout < 10*time.Millisecond:
		return bad("call-timeout", "want at least 10ms, got %v", c.CallTimeout)
	case c.Heartbeat <= 0:
		return bad("heartbeat", "must be positive, got %v", c.Heartbeat)
	case c.HeartbeatTimeout < c.Heartbeat:
		return bad("heartbeat-timeout", "want at least --heartbeat (%v), got %v", c.Heartbeat, c.HeartbeatTimeout)
	case c.Parallel < 1:
		return bad("parallel", "want at least 1, got %d", c.Parallel)
	case c.NodeBin == "":
		return fmt.Errorf("scale: no node binary to run")
	}
	return nil
}

// logf prints a progress line.
func (c *Config) logf(format string, args ...any) {
	if c.Log != nil {
		fmt.Fprintf(c.Log, format+"\n", args...)
	}
}
