package chaos

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/relay-dev/relay"
	"github.com/vmihailenco/msgpack/v5"
)

// killSlack: a message accepted this soon after a process on its path was
// killed counts as lost at that kill (the sender had not seen the death
// yet: without acks, what it sent into the dead connection is gone).
const killSlack = 100 * time.Millisecond

// recordGap is how long after a handler's effect (its A line) a server may
// take to record the request as handled (its ledger's fsync, after the
// journal's): a kill within it loses the record, and the resend runs the
// handler again. Such a run counts as cut short by the crash.
const recordGap = 100 * time.Millisecond

// run is one run of a handler on a key, from a server's journals.
type run struct {
	server    string
	inc       int
	killed    bool      // its process was killed (or crashed) later
	startedAt time.Time // when its handler started (its S record; zero when unknown)
	applied   bool      // the handler applied it (an A record)
	appliedAt time.Time // when (zero when unknown)
	endedAt   time.Time // when its process was killed or crashed (killed)
}

// cutShort reports whether the run was ended by its process's death before
// the server could record it as handled: during the handler, or within
// recordGap after its effect.
func (r run) cutShort() bool {
	if !r.killed {
		return false
	}
	if !r.applied {
		return true
	}
	return !r.appliedAt.IsZero() && !r.endedAt.IsZero() && r.endedAt.Sub(r.appliedAt) <= recordGap
}

// handled sums up the runs of one key: whether it was applied, whether a
// handler ran more than once and, if so, whether each run but the last
// was cut short by its process's death (a crash during the handler, or
// before its server recorded it: what at-least-once delivery allows).
func handled(rs []run) (applied, twice, atCrash bool) {
	for _, r := range rs {
		applied = applied || r.applied
	}
	if len(rs) < 2 {
		return applied, false, false
	}
	atCrash = true
	for _, r := range rs[:len(rs)-1] {
		if !r.cutShort() {
			atCrash = false
		}
	}
	return applied, true, atCrash
}

// runKey is the key of a message's runs: its key, and for a fanout, which
// every server handles, the server too.
func runKey(key, server string) string {
	if strings.HasPrefix(key, kindFanout+"/") {
		return key + "@" + server
	}
	return key
}

// readRuns reads every journal of every server: the runs by run key.
func (h *harness) readRuns() map[string][]run {
	runs := map[string][]run{}
	for _, m := range h.servers {
		for _, inc := range m.snapshot() {
			recs, err := readJournal(inc.journal)
			if err != nil {
				h.note("journal %s: %v", inc.journal, err)
			}
			killed := inc.end == endKilled || inc.end == endCrashed
			for _, r := range recs {
				if strings.HasPrefix(r.key, probePrefix) {
					continue
				}
				rk := runKey(r.key, m.name)
				if r.kind == recStarted {
					runs[rk] = append(runs[rk], run{server: m.name, inc: inc.n, killed: killed, startedAt: r.at, endedAt: inc.ended})
					continue
				}
				rs, found := runs[rk], false
				for i := len(rs) - 1; i >= 0 && !found; i-- {
					if rs[i].server == m.name && rs[i].inc == inc.n && !rs[i].applied {
						rs[i].applied, rs[i].appliedAt, found = true, r.at, true
					}
				}
				if !found {
					runs[rk] = append(rs, run{server: m.name, inc: inc.n, killed: killed, applied: true, appliedAt: r.at, endedAt: inc.ended})
				}
			}
		}
	}
	// In the order they started: the journals are read server by server,
	// and a call that fails over runs on a second server after the first.
	for _, rs := range runs {
		inStartOrder(rs)
	}
	return runs
}

// inStartOrder sorts rs by when each started (those without a start
// time keep their place at the front).
func inStartOrder(rs []run) {
	slices.SortStableFunc(rs, func(a, b run) int { return a.startedAt.Compare(b.startedAt) })
}

// reportUndelivered is the client nodes' WithUndelivered hook: it notes
// the key of the message.
func (h *harness) reportUndelivered(u relay.Undelivered) {
	var o Op
	if u.Kind == relay.KindNotify {
		var body struct {
			Payload Op `msgpack:"payload"`
		}
		_ = msgpack.Unmarshal(u.Body, &body)
		o = body.Payload
	} else {
		_ = msgpack.Unmarshal(u.Body, &o)
	}
	if o.Key == "" {
		return // a probe's, or not the load's
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.undelivered == nil {
		h.undelivered = map[string]bool{}
	}
	h.undelivered[o.Key] = true
}

// account turns the messages sent, the journals, the processes' lives and
// the client nodes' counters into the report's rows.
func (h *harness) account(ops []op, faults []Fault, before, after map[string]relay.Stats) *Report {
	cfg := &h.cfg
	rep := &Report{Mode: cfg.Mode, Seed: cfg.Seed, Duration: cfg.Duration, Rate: cfg.Rate,
		Servers: len(h.servers), Proxies: len(h.proxies), Faults: faults, Dir: cfg.Dir,
		CallTimeout: cfg.CallTimeout, LateAfter: cfg.LateAfter}
	a := h.newAccounts()
	sent := map[string]bool{}
	calls := map[string]*CallRow{}
	casts := map[string]*CastRow{}
	for _, k := range kindSpecs {
		if isCall(k.name) {
			calls[k.name] = &CallRow{Kind: k.name, Label: k.label, Typed: map[string]int{}}
		} else {
			casts[k.name] = &CastRow{Kind: k.name, Label: k.label, Refused: map[string]int{}}
		}
	}
	for i := range ops {
		o := &ops[i]
		sent[o.Key] = true
		if isCall(o.Kind) {
			calls[o.Kind].add(o, a.runs[o.Key], cfg)
			continue
		}
		a.countCast(casts[o.Kind], o)
	}
	for rk := range a.runs {
		key, _, _ := strings.Cut(rk, "@")
		if !sent[key] {
			rep.Notes = append(rep.Notes, fmt.Sprintf("a journal holds key %s, which the load never sent", key))
			break
		}
	}
	for _, k := range kindSpecs {
		if k.name == kindFanout && cfg.Mode == ModeRouter {
			continue
		}
		if c, ok := calls[k.name]; ok {
			rep.Calls = append(rep.Calls, *c)
			continue
		}
		c := casts[k.name]
		c.Dropped = after[k.client].DroppedCasts - before[k.client].DroppedCasts
		rep.Casts = append(rep.Casts, *c)
	}
	return rep
}

// accounts is what account reads about the run: the journals' runs, the
// kills, the servers' lives and the messages reported undelivered.
type accounts struct {
	h                *harness
	runs             map[string][]run
	kills            map[string][]time.Time
	lives            map[string][]incarnation
	servers, proxies []string
	reported         map[string]bool
}

func (h *harness) newAccounts() *accounts {
	a := &accounts{h: h, runs: h.readRuns(), kills: h.killTimes(), lives: map[string][]incarnation{},
		servers: h.memberNames(h.servers), proxies: h.memberNames(h.proxies)}
	for _, m := range h.servers {
		a.lives[m.name] = m.snapshot()
	}
	h.mu.Lock()
	a.reported = maps.Clone(h.undelivered)
	h.mu.Unlock()
	return a
}

// killed reports whether a process of names was killed (or crashed)
// between killSlack before from and to.
func (a *accounts) killed(from, to time.Time, names ...string) bool {
	from = from.Add(-killSlack)
	for _, n := range names {
		for _, t := range a.kills[n] {
			if !t.Before(from) && !t.After(to) {
				return true
			}
		}
	}
	return false
}

// onPath returns the proxies a kind goes through in this mode.
func (a *accounts) onPath(kind string) []string {
	switch mode := a.h.cfg.Mode; {
	case mode == ModeRouter && kind != kindNotify:
		return a.proxies
	case mode == ModePubSub && (kind == kindFanout || kind == kindNotify):
		return a.proxies
	}
	return nil
}

// settled reports whether server s was ready from settle before from
// until to: a fanout then must reach it.
func (a *accounts) settled(s string, from, to time.Time) bool {
	for _, inc := range a.lives[s] {
		if !inc.readyAt.IsZero() && !inc.readyAt.After(from.Add(-settle)) &&
			(inc.ended.IsZero() || !inc.ended.Before(to) || inc.end == endStopped) {
			return true
		}
	}
	return false
}

// countCast counts one cast, fanout or notification o in its row.
func (a *accounts) countCast(row *CastRow, o *op) {
	runs, begin := a.runs, a.h.begin
	row.Sent++
	if !o.accepted() {
		label := o.Err
		if o.Unresolved {
			label = "never returned"
		}
		row.Refused[label]++
		if applied, _, _ := handled(runs[o.Key]); applied && o.Kind != kindFanout {
			row.RefusedApplied++
		}
		return
	}
	row.Accepted++
	from, to := o.Start.Add(o.Took), o.Start.Add(a.h.cfg.CastTimeout)
	if o.Kind == kindFanout {
		for _, s := range a.servers {
			if !a.settled(s, from, to) {
				continue
			}
			applied, twice, atCrash := handled(runs[runKey(o.Key, s)])
			atKill := a.killed(from, to, append([]string{s}, a.onPath(o.Kind)...)...)
			if row.count(false, applied, twice, atCrash, atKill, a.reported[o.Key]) {
				row.sample(fmt.Sprintf("%s at %.2fs to %s", o.Key, from.Sub(begin).Seconds(), s))
			}
		}
		return
	}
	receivers := a.servers
	if o.Server != "" {
		receivers = []string{o.Server}
	}
	applied, twice, atCrash := handled(runs[o.Key])
	atKill := a.killed(from, to, append(receivers, a.onPath(o.Kind)...)...)
	if row.count(o.Kind == kindACast, applied, twice, atCrash, atKill, a.reported[o.Key]) {
		row.sample(fmt.Sprintf("%s at %.2fs%s", o.Key, from.Sub(begin).Seconds(), strings.TrimSuffix(" to "+o.Server, " to ")))
	}
}

// add counts one call.
func (r *CallRow) add(o *op, runs []run, cfg *Config) {
	r.Issued++
	applied, twice, atCrash := handled(runs)
	if twice {
		r.Twice++
		if atCrash {
			r.TwiceAtCrash++
		}
	}
	if o.Unresolved {
		r.Unresolved++
		return
	}
	if over := o.Took - cfg.CallTimeout; over > r.WorstOverrun {
		r.WorstOverrun = over
	}
	if o.Took-cfg.CallTimeout > cfg.LateAfter {
		r.Late++
	}
	switch o.Err {
	case "":
		r.OK++
		if o.Reply != o.Key {
			r.Wrong++
		}
		if !applied {
			r.OKNotApplied++
		}
	case untyped:
		r.Untyped++
		if r.UntypedSample == "" {
			r.UntypedSample = o.Msg
		}
	default:
		r.Typed[o.Err]++
	}
}

// count counts one delivery expected of an accepted one-way message.
func (r *CastRow) count(acked, applied, twice, atCrash, killed, reported bool) (silent bool) {
	r.Expected++
	switch {
	case applied:
		r.Applied++
		if reported {
			r.ReportedApplied++
		}
	case reported:
		r.Lost++
		r.Counted++
	case killed && !acked:
		r.Lost++
		r.LostAtKill++
	default:
		r.Lost++
		r.Silent++
		silent = true
	}
	if twice {
		r.Twice++
		if atCrash {
			r.TwiceAtCrash++
		}
	}
	return silent
}

// sample keeps the first few lost messages that no kill explains.
func (r *CastRow) sample(s string) {
	if len(r.LostSample) < 5 {
		r.LostSample = append(r.LostSample, s)
	}
}

// addProcesses fills in the processes' table and the crashes.
func (rep *Report) addProcesses(h *harness, start, end map[string]usageOf) {
	row := func(name, role string) ProcessRow {
		r := ProcessRow{Name: name, Role: role, Goroutines: [2]int{-1, -1}}
		if u, ok := start[name]; ok {
			r.Start, r.Goroutines[0], r.Measured[0] = u.Usage, u.Goroutines, true
		}
		if u, ok := end[name]; ok {
			r.End, r.Goroutines[1], r.Measured[1] = u.Usage, u.Goroutines, true
		}
		return r
	}
	for _, m := range append(append([]*member{}, h.servers...), h.proxies...) {
		r := row(m.name, m.role)
		for _, inc := range m.snapshot() {
			r.Starts++
			switch inc.end {
			case endKilled:
				r.Kills++
			case endNotReady:
				r.FailedStarts++
			case endCrashed, endUnclean:
				r.Crashes++
				rep.Crashes = append(rep.Crashes, Crash{Name: m.name, Incarnation: inc.n, How: inc.end,
					Exit: inc.exit, Log: inc.log, Tail: inc.tail})
			}
		}
		rep.Processes = append(rep.Processes, r)
	}
	r := row("redis", roleRedis)
	h.mu.Lock()
	r.Starts, r.Kills = h.redisStarts, len(h.redisKills)
	h.mu.Unlock()
	rep.Processes = append(rep.Processes, r)
	r = row(harnessName, roleHarness)
	r.Starts = 1
	rep.Processes = append(rep.Processes, r)
}

// addCounters fills in the counters: the client nodes' over the run, the
// surviving servers' since their last start.
func (rep *Report) addCounters(before, after, survivors map[string]relay.Stats) {
	for _, name := range loadClients {
		rep.Counters = append(rep.Counters, CounterRow{Node: "client " + name, Counters: counters(after[name], before[name])})
	}
	for _, name := range slices.Sorted(maps.Keys(survivors)) {
		rep.Counters = append(rep.Counters, CounterRow{Node: name, Counters: counters(survivors[name], relay.Stats{})})
	}
}

// counters returns the counters of s less those of base that are not zero.
func counters(s, base relay.Stats) map[string]uint64 {
	out := map[string]uint64{}
	for _, c := range []struct {
		name    string
		s, base uint64
	}{
		{"DroppedCasts", s.DroppedCasts, base.DroppedCasts}, {"DroppedReplies", s.DroppedReplies, base.DroppedReplies},
		{"Resends", s.Resends, base.Resends}, {"Duplicates", s.Duplicates, base.Duplicates},
		{"LateReplies", s.LateReplies, base.LateReplies}, {"ExpiredRequests", s.ExpiredRequests, base.ExpiredRequests},
		{"FailedCasts", s.FailedCasts, base.FailedCasts}, {"Malformed", s.Malformed, base.Malformed},
		{"UnknownVersion", s.UnknownVersion, base.UnknownVersion}, {"UnexpectedKind", s.UnexpectedKind, base.UnexpectedKind},
		{"HandlerPanics", s.HandlerPanics, base.HandlerPanics}, {"LoopFailures", s.LoopFailures, base.LoopFailures},
		{"Cancelled", s.Cancelled, base.Cancelled}, {"AcksSent", s.AcksSent, base.AcksSent},
		{"AcksReceived", s.AcksReceived, base.AcksReceived}, {"Failovers", s.Failovers, base.Failovers},
		{"StrayReplies", s.StrayReplies, base.StrayReplies},
	} {
		if d := c.s - c.base; d != 0 {
			out[c.name] = d
		}
	}
	restarts := 0
	for name, n := range s.Restarts {
		restarts += n - base.Restarts[name]
	}
	if restarts != 0 {
		out["ActorRestarts"] = uint64(restarts)
	}
	return out
}
