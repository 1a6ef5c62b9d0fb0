package scale

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/relay-dev/relay"
)

// maxSamples bounds the latency samples a process keeps per kind of call.
const maxSamples = 200_000

// HostReport is what a host process saw, written as JSON to its spec's
// Report path every second and at its end.
type HostReport struct {
	Name        string        `json:"name"`
	Role        string        `json:"role"`
	Nodes       int           `json:"nodes"`        // nodes started
	StartErrors []string      `json:"start_errors"` // nodes that did not start (the first few)
	StartTook   time.Duration `json:"start_took_ns"`
	Ready       bool          `json:"ready"`         // every node started
	LoadStopped bool          `json:"load_stopped"`  // the load is over, and every call it made has returned
	Final       bool          `json:"final"`         // the figures are final
	CloseTook   time.Duration `json:"close_took_ns"` // how long closing every node took (the report written last)
	// Calls are the calls this process sent (computes: to conductors;
	// control: the api's to computes).
	Calls CallCounts `json:"calls"`
	// Casts counts the scheduler's directed casts sent (control) or the
	// casts received (compute).
	CastsSent, CastsFailed, CastsReceived int64
	// Fanouts and Notes are, per sequence number, how many computes of this
	// process received it and the longest it took. Control: what was sent.
	Fanouts map[string]Delivery `json:"fanouts"`
	Notes   map[string]Delivery `json:"notes"`
	Skipped int64               `json:"skipped"` // sends skipped: every worker busy
	// Churn is the conductors that joined and left during the load
	// (control); Stale the calls to the conductors that were refused
	// because the conductor they reached had left (compute; the first
	// maxStale).
	Churn   []Churn `json:"churn"`
	Stale   []Stale `json:"stale"`
	Dropped uint64  `json:"dropped"` // what the nodes' Stats count as dropped or failed
	// Counters are the nodes' Stats counters that are not zero, summed
	// over the nodes of the process, by name (ExpiredRequests, ...), and
	// Restarts their actors' restarts: where Dropped comes from.
	Counters map[string]uint64 `json:"counters"`
	Restarts int               `json:"restarts"`
	// Undelivered counts the one-way messages this process's nodes sent
	// and then reported undelivered (relay.WithUndelivered), by kind,
	// method and why: the losses their sender was told of.
	Undelivered map[string]int64 `json:"undelivered"`
	// FailedSent is when each failed call was sent (unix ns; the first
	// maxSamples): when the failures happened, for the timeline.
	FailedSent []int64 `json:"failed_sent"`
}

// CallCounts counts calls by outcome, with their latencies.
type CallCounts struct {
	OK      int64            `json:"ok"`
	Errors  map[string]int64 `json:"errors"` // by error
	Samples []time.Duration  `json:"samples_ns"`
}

// Delivery is how many receivers got one fanout or notification, and the
// longest it took one of them (for a sender: Max is 0, N the sends).
type Delivery struct {
	N   int           `json:"n"`
	Max time.Duration `json:"max_ns"`
	At  int64         `json:"at"` // when it was sent, unix ns
}

// recorder gathers what one host process sees. Safe for concurrent use.
type recorder struct {
	mu  sync.Mutex
	rep HostReport
	// retired sums the Stats counters of the churn's conductors, closed.
	retired map[string]uint64
}

func newRecorder(name, role string) *recorder {
	return &recorder{retired: map[string]uint64{}, rep: HostReport{Name: name, Role: role,
		Calls:   CallCounts{Errors: map[string]int64{}},
		Fanouts: map[string]Delivery{}, Notes: map[string]Delivery{}, Undelivered: map[string]int64{}}}
}

// call records a call's outcome.
func (r *recorder) call(took time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if errors.Is(err, relay.ErrNoSuchMethod) {
		// The server it reached has just left (churn): counted apart,
		// by when it was sent (when the caller chose the route).
		if len(r.rep.Stale) < maxStale {
			r.rep.Stale = append(r.rep.Stale, Stale{Sent: time.Now().Add(-took).UnixNano(), Host: refusedBy(err)})
		}
		return
	}
	if err != nil {
		r.rep.Calls.Errors[errorClass(err)]++
		if len(r.rep.FailedSent) < maxSamples {
			r.rep.FailedSent = append(r.rep.FailedSent, time.Now().Add(-took).UnixNano())
		}
		return
	}
	r.rep.Calls.OK++
	if len(r.rep.Calls.Samples) < maxSamples {
		r.rep.Calls.Samples = append(r.rep.Calls.Samples, took)
	}
}

// errorClass names an error for the counts: the sentinel it wraps, or
// its text.
func errorClass(err error) string {
	for _, s := range []error{relay.ErrTimeout, relay.ErrNoServers, relay.ErrBackPressure, relay.ErrClosed,
		context.DeadlineExceeded, context.Canceled} {
		if errors.Is(err, s) {
			return s.Error()
		}
	}
	var re *relay.RemoteError
	if errors.As(err, &re) {
		return "remote " + re.Code
	}
	msg := err.Error()
	if len(msg) > 80 {
		msg = msg[:80]
	}
	return msg
}

// cast records a directed cast sent, or failed to send.
func (r *recorder) cast(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.rep.CastsFailed++
		return
	}
	r.rep.CastsSent++
}

// received records a cast received.
func (r *recorder) received() {
	r.mu.Lock()
	r.rep.CastsReceived++
	r.mu.Unlock()
}

// delivered records a fanout (fanout true) or a notification received.
func (r *recorder) delivered(fanout bool, s Stamp) {
	took := time.Duration(time.Now().UnixNano() - s.Sent)
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.rep.Notes
	if fanout {
		m = r.rep.Fanouts
	}
	k := strconv.FormatInt(s.Seq, 10)
	d := m[k]
	d.N++
	d.Max = max(d.Max, took)
	d.At = s.Sent
	m[k] = d
}

// sent records a fanout or notification sent (n is 1, or 0 on failure).
func (r *recorder) sent(fanout bool, s Stamp, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.rep.Notes
	if fanout {
		m = r.rep.Fanouts
	}
	d := Delivery{At: s.Sent}
	if err == nil {
		d.N = 1
	} else {
		r.rep.Calls.Errors["send "+map[bool]string{true: "fanout", false: "notification"}[fanout]+": "+errorClass(err)]++
	}
	m[strconv.FormatInt(s.Seq, 10)] = d
}

// undelivered records a one-way message its node reported undelivered
// (the relay.WithUndelivered hook: it must return quickly).
func (r *recorder) undelivered(u relay.Undelivered) {
	k := fmt.Sprintf("%s %s: %s", u.Kind, u.Method, undeliveredClass(u.Err))
	r.mu.Lock()
	r.rep.Undelivered[k]++
	r.mu.Unlock()
}

// undeliveredClass names why a message was reported undelivered, without
// the peer's address.
func undeliveredClass(err error) string {
	for _, s := range []error{relay.ErrConnectionLost, relay.ErrClosed, relay.ErrUnauthorized} {
		if errors.Is(err, s) {
			return strings.TrimPrefix(s.Error(), "relay: ")
		}
	}
	msg := err.Error()
	if strings.Contains(msg, "no acknowledgement") {
		return "no acknowledgement before its deadline"
	}
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	return strings.TrimPrefix(msg, "sockets: ")
}

// skip records a send skipped because every worker was busy.
func (r *recorder) skip() {
	r.mu.Lock()
	r.rep.Skipped++
	r.mu.Unlock()
}

// update changes the report under the lock.
func (r *recorder) update(f func(*HostReport)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(&r.rep)
}

// snapshot returns a deep copy of the report.
func (r *recorder) snapshot() HostReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	rep := r.rep
	rep.StartErrors = append([]string(nil), r.rep.StartErrors...)
	rep.Calls.Samples = append([]time.Duration(nil), r.rep.Calls.Samples...)
	rep.Calls.Errors = copyMap(r.rep.Calls.Errors)
	rep.Fanouts, rep.Notes = copyMap(r.rep.Fanouts), copyMap(r.rep.Notes)
	rep.Churn, rep.Stale = slices.Clone(r.rep.Churn), slices.Clone(r.rep.Stale)
	rep.Undelivered = copyMap(r.rep.Undelivered)
	rep.FailedSent = slices.Clone(r.rep.FailedSent)
	rep.Counters = copyMap(r.retired)
	return rep
}

func copyMap[V any](m map[string]V) map[string]V {
	out := make(map[string]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
