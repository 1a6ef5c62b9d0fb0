package chaos

import (
	"fmt"
	"io"
	"time"

	"github.com/relay-dev/relay/internal/flagcheck"
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
	v := flagcheck.New("chaos")
	flagcheck.OneOf(v, "mode", c.Mode, Modes)
	flagcheck.AtLeast(v, "duration", c.Duration, 5*time.Second)
	flagcheck.Between(v, "servers", c.Servers, 2, maxMembers)
	if c.Mode != ModeDirect {
		flagcheck.Between(v, "proxies", c.Proxies, 1, maxMembers)
	}
	flagcheck.AtLeast(v, "rate", c.Rate, 1)
	flagcheck.AtLeast(v, "workers", c.Workers, 1)
	flagcheck.NotNegative(v, "work", c.Work)
	flagcheck.Positive(v, "call-timeout", c.CallTimeout)
	flagcheck.Positive(v, "cast-timeout", c.CastTimeout)
	flagcheck.NotNegative(v, "late-after", c.LateAfter)
	flagcheck.AtLeast(v, "ttl", c.TTL, time.Second)
	flagcheck.AtLeast(v, "mean-gap", c.MeanGap, 100*time.Millisecond)
	v.Missing(c.NodeBin == "", "node binary to run")
	return v.Err()
}

// logf prints a progress line.
func (c *Config) logf(format string, args ...any) {
	if c.Log != nil {
		fmt.Fprintf(c.Log, format+"\n", args...)
	}
}
