package chaos

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/relay-dev/relay"
	"github.com/relay-dev/relay/internal/proc"
	"github.com/relay-dev/relay/internal/testutil"
)

// inject applies the faults at their times, until the schedule ends or
// ctx does. It fills in each fault's Result.
func (h *harness) inject(ctx context.Context, faults []Fault) {
	for i := range faults {
		f := &faults[i]
		select {
		case <-ctx.Done():
			f.Result = "not applied: the run was interrupted"
			continue
		case <-time.After(time.Until(h.begin.Add(f.At))): // the schedule under test
		}
		f.Result = h.apply(f)
		h.cfg.logf("%s  %s", f, f.Result)
	}
}

// apply applies one fault and says what happened.
func (h *harness) apply(f *Fault) string {
	switch f.Kind {
	case FaultActor:
		var err error
		if n, ok := h.clients[f.Victim]; ok {
			err = n.KillActor(f.Actor)
		} else {
			ctx, cancel := context.WithTimeout(h.ctx, 2*time.Second)
			err = h.clients[clientControl].Call(ctx, relay.Target{Topic: ServeTopic, Server: f.Victim}, MethodKill, f.Actor, nil)
			cancel()
		}
		if err != nil {
			return "failed: " + err.Error()
		}
		return "ok"
	case FaultServer, FaultProxy:
		m := h.member(f.Victim)
		if err := m.kill(); err != nil {
			return "skipped: " + err.Error()
		}
		h.afterDown(f, func() error {
			port := m.port
			if h.cfg.NewPorts && m.role == roleServer {
				ports, err := proc.FreePorts(m.addr, 1)
				if err != nil {
					return err
				}
				port = ports[0]
			}
			return m.launch(h.ctx, h.cfg.NodeBin, h.cfg.Dir, port)
		})
		return "killed (-9)"
	case FaultRedisRestart:
		h.rs.Stop()
		h.mu.Lock()
		h.redisKills = append(h.redisKills, time.Now())
		h.mu.Unlock()
		h.afterDown(f, func() error {
			err := h.rs.Relaunch()
			if err == nil {
				h.mu.Lock()
				h.redisStarts++
				h.mu.Unlock()
			}
			return err
		})
		return "killed (-9); back empty"
	case FaultRedisPause:
		if _, err := h.rs.Do("CLIENT", "PAUSE", strconv.FormatInt(f.Down.Milliseconds(), 10), "ALL"); err != nil {
			return "failed: " + err.Error()
		}
		return "ok"
	}
	return "unknown fault"
}

// afterDown runs restart once f's victim has been down for f.Down, in a
// goroutine of its own that the drain waits for.
func (h *harness) afterDown(f *Fault, restart func() error) {
	h.restarts.Add(1)
	go func() { // ends once restarted, or at teardown
		defer h.restarts.Done()
		select {
		case <-h.ctx.Done():
			return
		case <-time.After(f.Down): // how long the victim stays down: part of the schedule
		}
		if err := restart(); err != nil {
			f.Back = "not restarted"
			h.note("%s could not be restarted after %s at %.2fs: %v", f.Victim, f.Kind, f.At.Seconds(), err)
			return
		}
		f.Back = fmt.Sprintf("back at %.2fs", time.Since(h.begin).Seconds())
	}()
}

// member returns the server or proxy named name.
func (h *harness) member(name string) *member {
	for _, m := range append(append([]*member{}, h.servers...), h.proxies...) {
		if m.name == name {
			return m
		}
	}
	panic("chaos: no member " + name)
}

// usageOf is what one process holds: Usage, and its goroutines (-1: not
// known, for Redis or a process that did not answer).
type usageOf struct {
	proc.Usage
	Goroutines int `json:"goroutines"`
}

// usage reads what every running process holds, by name, the harness's
// own included.
func (h *harness) usage() map[string]usageOf {
	out := map[string]usageOf{}
	for _, m := range append(append([]*member{}, h.servers...), h.proxies...) {
		pid, ok := m.running()
		if !ok {
			continue
		}
		u, err := proc.ReadUsage(pid)
		if err != nil {
			continue
		}
		g, err := goroutines(h.http, m.httpAddr)
		if err != nil {
			g = -1
		}
		out[m.name] = usageOf{u, g}
	}
	if pid := h.rs.Pid(); pid != 0 {
		if u, err := proc.ReadUsage(pid); err == nil {
			out["redis"] = usageOf{u, -1}
		}
	}
	if u, err := proc.ReadUsage(os.Getpid()); err == nil {
		out[harnessName] = usageOf{u, runtime.NumGoroutine()}
	}
	return out
}

// harnessName names the harness's own process (the client nodes').
const harnessName = "harness"

// clientStats returns the Stats of the client nodes that send the load.
func (h *harness) clientStats() map[string]relay.Stats {
	out := map[string]relay.Stats{}
	for _, name := range loadClients {
		out[name] = h.clients[name].Stats()
	}
	return out
}

// survivorStats asks each server that runs for its Stats ($relay.info):
// the counters of its current incarnation.
func (h *harness) survivorStats() map[string]relay.Stats {
	out := map[string]relay.Stats{}
	for _, m := range h.servers {
		if _, ok := m.running(); !ok {
			continue
		}
		var info relay.Info
		err := testutil.Poll(5*time.Second, func() error {
			ctx, cancel := context.WithTimeout(h.ctx, time.Second)
			defer cancel()
			var err error
			info, err = h.clients[clientControl].NodeInfo(ctx, relay.Target{Topic: ServeTopic, Server: m.name})
			return err
		})
		if err != nil {
			h.note("no stats from %s: %v", m.name, err)
			continue
		}
		out[m.name] = info.Stats
	}
	return out
}

// killTimes returns when each process was killed or crashed, by name.
func (h *harness) killTimes() map[string][]time.Time {
	out := map[string][]time.Time{}
	for _, m := range append(append([]*member{}, h.servers...), h.proxies...) {
		for _, inc := range m.snapshot() {
			if inc.end == endKilled || inc.end == endCrashed {
				out[m.name] = append(out[m.name], inc.ended)
			}
		}
	}
	h.mu.Lock()
	out["redis"] = slices.Clone(h.redisKills)
	h.mu.Unlock()
	return out
}
