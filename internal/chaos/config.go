package chaos

import (
	"fmt"
	"io"
	"time"
)

// Modes are the topologies a run can use.
const (
	ModeDirect = "direct" // clients reach servers directly; fanout and notifications by unicast
	ModeRouter = "router" // calls and casts through router proxies (no fanout: it needs pub/sub)
	ModePubSub = "pubsub" // fanout and notifications through publisher proxies with acks
)

// Modes lists the modes, in the order `node chaos -h` shows them.
var Modes = []string{ModeDirect, ModeRouter, ModePubSub}

// Config is one run. DefaultConfig fills it in but for NodeBin.
type Config struct {
	Mode     string        // ModeDirect, ModeRouter or ModePubSub
	Seed     int64         // picks the faults, their times and victims, and the load's choices
	Duration time.Duration // of load and faults; the run then drains and checks
	Servers  int           // node serve processes
	Proxies  int           // proxy processes, in router and pubsub modes
	Rate     int           // messages per second the load tries to send, all kinds together
	Workers  int           // goroutines sending them (a call holds one until it ends)
	Work     time.Duration // a handler works up to this long (uniformly at random)
	// CallTimeout is each call's deadline, CastTimeout each cast's,
	// fanout's and notification's.
	CallTimeout, CastTimeout time.Duration
	// LateAfter: a call that ends later than its deadline by more than
	// this is counted late.
	LateAfter time.Duration
	TTL       time.Duration // registration TTL of the servers and proxies
	// MeanGap is the mean time between two faults.
	MeanGap time.Duration
	// NewPorts restarts a killed server on a new port (default: its old
	// one, so that resends reach it).
	NewPorts bool
	// ServeArgs are added to every `node serve`, with {host} replaced by
	// the server's name and {dir} by a directory of its own that outlives
	// its restarts (for example --data-dir={dir}).
	ServeArgs []string

	NodeBin string    // the node binary to run the servers and proxies with
	Dir     string    // where journals and logs go; "": a new temporary directory (Report.Dir)
	Log     io.Writer // progress lines; nil: none
}

// DefaultConfig returns the defaults of `node chaos`.
func DefaultConfig() Config {
	return Config{
		Mode:        ModeDirect,
		Duration:    60 * time.Second,
		Servers:     3,
		Proxies:     2,
		Rate:        300,
		Workers:     64,
		Work:        20 * time.Millisecond,
		CallTimeout: 2 * time.Second,
		CastTimeout: 5 * time.Second,
		LateAfter:   250 * time.Millisecond,
		TTL:         5 * time.Second,
		MeanGap:     3 * time.Second,
	}
}

// validate checks c and names the first bad field as the flag that sets
// it in `node chaos`.
func (c *Config) validate() error {
	bad := func(flag, format string, args ...any) error {
		return fmt.Errorf("chaos: --%s: %s", flag, fmt.Sprintf(format, args...))
	}
	switch {
	case c.Mode != ModeDirect && c.Mode != ModeRouter && c.Mode != ModePubSub:
		return bad("mode", "%q is not one of %v", c.Mode, Modes)
	case c.Duration < 5*time.Second:
		return bad("duration", "want at least 5s, got %v", c.Duration)
	case c.Servers < 2 || c.Servers > maxMembers:
		return bad("servers", "want 2 to %d, got %d", maxMembers, c.Servers)
	case c.Mode != ModeDirect && (c.Proxies < 1 || c.Proxies > maxMembers):
		return bad("proxies", "want 1 to %d, got %d", maxMembers, c.Proxies)
	case c.Rate < 1:
		return bad("rate", "want at least 1, got %d", c.Rate)
	case c.Workers < 1:
		return bad("workers", "want at least 1, got %d", c.Workers)
	case c.Work < 0:
		return bad("work", "must not be negative, got %v", c.Work)
	case c.CallTimeout <= 0:
		return bad("call-timeout", "must be positive, got %v", c.CallTimeout)
	case c.CastTimeout <= 0:
		return bad("cast-timeout", "must be positive, got %v", c.CastTimeout)
	case c.LateAfter < 0:
		return bad("late-after", "must not be negative, got %v", c.LateAfter)
	case c.TTL < time.Second:
		return bad("ttl", "want at least 1s, got %v", c.TTL)
	case c.MeanGap < 100*time.Millisecond:
		return bad("mean-gap", "want at least 100ms, got %v", c.MeanGap)
	case c.NodeBin == "":
		return fmt.Errorf("chaos: no node binary to run")
	}
	return nil
}

// logf prints a progress line.
func (c *Config) logf(format string, args ...any) {
	if c.Log != nil {
		fmt.Fprintf(c.Log, format+"\n", args...)
	}
}
