package scale

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

// load drives the mixed load for the run's duration, measures each
// process at its middle and end and Redis over it, lets the last fanouts
// arrive, stops the host processes and gathers their reports into rep.
func (h *harness) load(ctx context.Context, rep *Report) error {
	stoppedAt, err := h.runLoad(ctx, rep)
	if err != nil {
		return err
	}
	h.drainLoad(ctx, rep, stoppedAt)
	return nil
}

// runLoad runs the load for cfg.Duration, measuring the processes halfway
// and at the end, then stops it everywhere and returns when it stopped.
func (h *harness) runLoad(ctx context.Context, rep *Report) (stoppedAt time.Time, err error) {
	cfg := &h.cfg
	at, err := h.markStart()
	if err != nil {
		return time.Time{}, err
	}
	start := time.Now()
	rep.LoadStart = start.UnixNano()
	h.signalHosts(syscall.SIGUSR1)
	h.control.BeginLoad()
	cfg.logf("load: %d calls/s to conductors, %d calls/s and %d casts/s to computes, a fanout and a notification every %v, for %v",
		cfg.CallRate, cfg.APIRate, cfg.CastRate, cfg.FanoutEvery, cfg.Duration)
	sleep(ctx, cfg.Duration/2)
	if rep.Mid, err = h.usage(); err != nil {
		return time.Time{}, err
	}
	midAt := time.Now()
	sleep(ctx, cfg.Duration-time.Since(start))
	if rep.End, err = h.usage(); err != nil {
		return time.Time{}, err
	}
	cpuPercent(rep.Mid, rep.End, time.Since(midAt))
	rep.ListenOverflows = listenOverflows() - at.overflows
	after, err := readRedis(h.rs)
	if err != nil {
		return time.Time{}, err
	}
	took := time.Since(start)
	if stoppedAt, err = h.stopLoad(ctx, rep); err != nil {
		return time.Time{}, err
	}
	rep.Took = took
	rep.Redis = RedisLoad{Before: at.redis, After: after,
		OpsPerSec: float64(after.Commands-at.redis.Commands) / took.Seconds()}
	return stoppedAt, nil
}

// stopLoad stops the load everywhere (the host processes on their second
// SIGUSR1) and waits until the calls made return, before the churn's
// conductors close: a call still on its way to one as it closed would
// time out.
func (h *harness) stopLoad(ctx context.Context, rep *Report) (time.Time, error) {
	cfg := &h.cfg
	h.signalHosts(syscall.SIGUSR1)
	h.control.stopLoad()
	stopped := poll(ctx, cfg.CallTimeout+drainMargin, func() error {
		for i, r := range h.hostReports() {
			if err := h.hosts[i].exited(); err != nil {
				return err
			}
			if !r.LoadStopped {
				return fmt.Errorf("%s has not stopped its load", h.hosts[i].name)
			}
		}
		return nil
	})
	h.control.stopChurn()
	stoppedAt := time.Now()
	for _, c := range h.hosts {
		if err := c.exited(); err != nil {
			return time.Time{}, err
		}
	}
	if stopped != nil {
		rep.Remarks = append(rep.Remarks, fmt.Sprintf("the load did not stop within %v: %v", cfg.CallTimeout+drainMargin, stopped))
	}
	return stoppedAt, nil
}

// drainLoad waits for what was sent last, then stops the host processes
// and adds up what every process reports.
func (h *harness) drainLoad(ctx context.Context, rep *Report, stoppedAt time.Time) {
	cfg := &h.cfg
	// What was sent last may arrive until its deadline, a call timeout
	// from its sending; after that it is delivered, reported undelivered
	// to its sender, or dropped on arrival (expired): nothing is in flight.
	drain := cfg.CallTimeout + drainMargin
	cfg.logf("load: done after %v; waiting up to %v for the last casts and fanouts", rep.Took.Round(time.Millisecond), drain)
	sent := h.control.Report()
	_ = poll(ctx, drain, func() error {
		reps := h.hostReports()
		if lost := undelivered(sent, reps, cfg.Nodes); lost > 0 {
			return fmt.Errorf("%d deliveries missing", lost)
		}
		got := int64(0)
		for _, r := range reps {
			got += r.CastsReceived
		}
		if got < sent.CastsSent {
			return fmt.Errorf("%d of %d casts received", got, sent.CastsSent)
		}
		return nil
	})
	h.sweepAfter(ctx, rep)
	// The hosts close their nodes, dropping every connection: a one-way
	// message sent less than a second before (sockets' unreadAge) on a
	// connection that drops is reported to its sender as possibly lost
	// (ErrConnectionLost), though it arrived.
	sleep(ctx, time.Until(stoppedAt.Add(unreadWait)))
	h.signalHosts(syscall.SIGTERM)
	rep.Remarks = append(rep.Remarks, stopChildren(h.hosts)...)
	reps := h.hostReports()
	for i, r := range reps {
		if !r.Final {
			rep.Remarks = append(rep.Remarks, fmt.Sprintf("%s wrote no final report (log %s)", h.hosts[i].name, h.hosts[i].log))
		}
	}
	rep.add(h.control.Report(), reps)
}

// sweepAfter has the api call every compute once more, after the load:
// a process that stopped exchanging messages (its ZeroMQ I/O thread
// stalled) shows as all its computes missing.
func (h *harness) sweepAfter(ctx context.Context, rep *Report) {
	start := time.Now()
	missing, first := h.control.sweepAll(ctx, 64)
	a := SweepReport{Of: h.cfg.Nodes, Answered: h.cfg.Nodes - len(missing), Took: time.Since(start), ByHost: map[string]int{}}
	if first != nil {
		a.First = first.Error()
	}
	per := (h.cfg.Nodes + h.cfg.Procs - 1) / h.cfg.Procs
	for _, i := range missing {
		a.ByHost[hostName(i/per)]++
	}
	rep.AfterLoad = a
	h.cfg.logf("after the load: %d of %d computes answer a directed call", a.Answered, a.Of)
}

// cpuPercent sets the CPU share of each process of end from its CPU time
// in mid, measured d earlier.
func cpuPercent(mid, end []Usage, d time.Duration) {
	for i := range end {
		for _, m := range mid {
			if m.Name == end[i].Name && d > 0 {
				end[i].CPUPercent = 100 * float64(end[i].CPU-m.CPU) / float64(d)
			}
		}
	}
}

// stopLoad stops the host's load and waits for it (every call it made
// has returned); its nodes, and the churn, keep running.
func (h *Host) stopLoad() {
	h.cancel()
	h.wg.Wait()
}

// stopChurn stops the churn and waits for it: the conductors it started
// are closed.
func (h *Host) stopChurn() {
	h.churnCancel()
	h.churnWG.Wait()
}

// undelivered counts the deliveries of the fanouts and notifications sent
// that are missing: each should reach every one of n computes.
func undelivered(sent HostReport, reps []HostReport, n int) int {
	missing := 0
	for _, pick := range []func(HostReport) map[string]Delivery{
		func(r HostReport) map[string]Delivery { return r.Fanouts },
		func(r HostReport) map[string]Delivery { return r.Notes },
	} {
		for k, d := range pick(sent) {
			if d.N == 0 || k[0] == '-' {
				continue
			}
			got := 0
			for _, r := range reps {
				got += pick(r)[k].N
			}
			missing += max(n-got, 0)
		}
	}
	return missing
}

// usage measures every process of the run: this one (the control plane),
// the host processes, the proxies and Redis.
func (h *harness) usage() ([]Usage, error) {
	conns, err := established()
	if err != nil {
		return nil, err
	}
	port := h.rs.Port()
	var out []Usage
	add := func(name, role string, nodes, pid int) {
		u, err := usageOf(pid, conns, port)
		if err != nil {
			return // it exited: reported elsewhere
		}
		u.Name, u.Role, u.Nodes = name, role, nodes
		out = append(out, u)
	}
	add("control (this process)", RoleControl, len(h.control.nodes), os.Getpid())
	for _, c := range h.children {
		if c.p != nil && !c.p.Exited() {
			add(c.name, c.role, c.nodes, c.p.Pid())
		}
	}
	if pid := h.rs.Pid(); pid != 0 {
		add("redis-server :"+strconv.Itoa(port), roleRedis, 0, pid)
	}
	return out, nil
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
