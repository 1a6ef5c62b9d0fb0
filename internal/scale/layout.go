package scale

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// The cloud's layout: what the nodes serve and send.
const (
	// TopicCompute is served by every compute node, each under its own
	// server name (ComputeName): directed calls and casts, and fanouts.
	TopicCompute = "compute"
	// TopicConductor is served by the conductors; computes call it.
	TopicConductor = "conductor"
	// TopicEvents is the notification topic every compute listens to, each
	// in a listener pool of its own, so that every compute gets each.
	TopicEvents = "instance-events"

	MethodConsole = "get_console"  // api → compute, call
	MethodBuild   = "build"        // scheduler → compute, cast
	MethodUpdate  = "update"       // scheduler → every compute, fanout
	MethodReport  = "report_state" // compute → conductor, call
	EventUpdate   = "instance.update"
)

// Roles of a host process.
const (
	RoleCompute = "compute" // compute nodes only
	RoleControl = "control" // conductors, schedulers and the api node
)

// ComputeName is the server name of compute node i (0-based, across the
// whole run).
func ComputeName(i int) string { return fmt.Sprintf("compute-%d", i) }

// hostName is the relay host (WithHost) of the nodes of host process p:
// the host whose local publisher proxy they use in proxied mode.
func hostName(p int) string { return fmt.Sprintf("scale-h%d", p) }

// computeAddr is the loopback address of the j-th compute node of host
// process p: 127.(100+p).(j/250).(j%250+1).
func computeAddr(p, j int) string {
	return fmt.Sprintf("127.%d.%d.%d", 100+p, j/250, j%250+1)
}

// controlAddr is the address of the i-th node of the control process.
func controlAddr(i int) string { return fmt.Sprintf("127.98.%d.%d", i/250, i%250+1) }

// Proxy addresses: router i, central publisher i, local publisher of host
// process p.
func routerAddr(i int) string   { return fmt.Sprintf("127.99.0.%d", i+1) }
func centralAddr(i int) string  { return fmt.Sprintf("127.99.1.%d", i+1) }
func localPubAddr(p int) string { return fmt.Sprintf("127.99.2.%d", p+1) }

// Stamp is the payload of fanouts and notifications: which one it is and
// when it was sent (unix ns, one machine's clock), so that each receiver
// can say how long it took.
type Stamp struct {
	Seq  int64 `msgpack:"seq"`
	Sent int64 `msgpack:"sent"`
}

// HostSpec is what a host process runs: `node scale --host-spec FILE`
// reads it as JSON.
type HostSpec struct {
	Name       string        `json:"name"`  // the relay host of its nodes, scale-hP (or scale-control)
	Index      int           `json:"index"` // P
	Role       string        `json:"role"`  // RoleCompute or RoleControl
	First      int           `json:"first"` // compute role: its nodes are computes First … First+Count-1
	Count      int           `json:"count"`
	Nodes      int           `json:"nodes"` // all computes of the run (whom the control plane addresses)
	Conductors int           `json:"conductors"`
	Schedulers int           `json:"schedulers"`
	Matchmaker string        `json:"matchmaker"`
	Proxied    bool          `json:"proxied"`
	TTL        time.Duration `json:"ttl"`
	Timeout    time.Duration `json:"timeout"`
	Parallel   int           `json:"parallel"`
	// Heartbeat and HeartbeatTimeout go to relay.WithHeartbeat.
	Heartbeat        time.Duration `json:"heartbeat"`
	HeartbeatTimeout time.Duration `json:"heartbeat_timeout"`
	// Rates, per second, of what this process sends once the load begins:
	// compute → conductor calls (compute role); api calls and scheduler
	// casts (control role).
	CallRate    float64       `json:"call_rate"`
	APIRate     float64       `json:"api_rate"`
	CastRate    float64       `json:"cast_rate"`
	FanoutEvery time.Duration `json:"fanout_every"`
	ChurnEvery  time.Duration `json:"churn_every"` // control role: a conductor joins and one leaves this often (0: never)
	Report      string        `json:"report"`      // where the process writes its HostReport
}

// addr returns the loopback address of the j-th node of the spec.
func (s *HostSpec) addr(j int) string {
	if s.Role == RoleControl {
		return controlAddr(j)
	}
	return computeAddr(s.Index, j)
}

// ReadSpec reads a HostSpec from path.
func ReadSpec(path string) (HostSpec, error) {
	var s HostSpec
	b, err := os.ReadFile(path)
	if err != nil {
		return s, fmt.Errorf("scale: host spec: %w", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("scale: host spec %s: %w", path, err)
	}
	if s.Role != RoleCompute && s.Role != RoleControl || s.Matchmaker == "" || s.Report == "" {
		return s, fmt.Errorf("scale: host spec %s: want a role (%s or %s), a matchmaker and a report path", path, RoleCompute, RoleControl)
	}
	return s, nil
}

// writeJSON writes v to path atomically (a temporary file renamed).
func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// readJSON reads path into v.
func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
