package scale

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relay-dev/relay"
	"github.com/relay-dev/relay/internal/latency"
)

// maxStale bounds the refused calls a process keeps.
const maxStale = 10_000

// Stale is a call refused because the server it reached had left: when
// it was sent (unix ns) and the host that refused it.
type Stale struct {
	Sent int64  `json:"sent"`
	Host string `json:"host"`
}

// refusedBy returns the host named by a refusal (ErrNoSuchMethod:
// `method "m": host H serves no topic …` or `… not served on topic T by
// host H (serving …)`), or "".
func refusedBy(err error) string {
	_, rest, ok := strings.Cut(err.Error(), ": host ")
	if !ok {
		if _, rest, ok = strings.Cut(err.Error(), " by host "); !ok {
			return ""
		}
	}
	host, _, _ := strings.Cut(rest, " ")
	return host
}

// Churn is one conductor that joined (and perhaps left) during the load,
// in unix ns: when its registration was written, when the first call
// reached it (0: none), when it left (0: it did not).
type Churn struct {
	Host   string `json:"host"` // its relay host, which its refusals name
	Joined int64  `json:"joined"`
	First  int64  `json:"first"`
	Left   int64  `json:"left"`
	Closed int64  `json:"closed"` // when its node began to close (0: at the end)
}

// ChurnReport is the registration churn of the load: conductors joining
// and leaving while the computes call the conductor topic.
type ChurnReport struct {
	Every time.Duration `json:"every_ns"`
	// Joins and JoinNever count the joiners and those no call reached;
	// JoinP50 and JoinMax are the time from a joiner's registration until
	// the first call reached it.
	Joins, JoinNever int
	JoinP50, JoinMax time.Duration
	// Leaves counts the leavers; Stale the calls sent after a leave that
	// still reached the leaver (refused by its node: ErrNoSuchMethod);
	// LeaveP50 and LeaveMax the time from a leave until the last of them
	// was sent (how long the callers' routes still had the leaver).
	// InFlight counts the refused calls sent before their leaver left
	// (they were on the way when it did).
	Leaves, Stale, InFlight int
	LeaveP50, LeaveMax      time.Duration
}

// churner is a conductor of the churn: its node, its server and what it
// saw.
type churner struct {
	node  *relay.Node
	srv   *relay.Server
	rec   Churn
	first atomic.Int64
}

// churn runs the registration churn: every ChurnEvery a new conductor
// joins, the one that joined before it leaves (unregisters; its node keeps
// answering, with ErrNoSuchMethod, the calls that still come) and the one
// before that closes. Runs in its own goroutine until Close.
func (h *Host) churn() {
	t := time.NewTicker(h.spec.ChurnEvery)
	defer t.Stop()
	var live []*churner // joined; the last one has not left
	var wg sync.WaitGroup
	defer func() {
		for _, c := range live {
			h.retire(c, &wg)
		}
		wg.Wait()
	}()
	for k := 0; ; k++ {
		select {
		case <-h.churnCtx.Done():
			return
		case <-t.C:
		}
		if len(live) == 2 {
			h.retire(live[0], &wg)
			live = live[1:]
		}
		if len(live) == 1 {
			live[0].rec.Left = time.Now().UnixNano()
			if err := live[0].srv.Stop(); err != nil {
				h.log.Warn("churn: leave", "err", err)
			}
		}
		c, err := h.join(k)
		if err != nil {
			h.rec.update(func(r *HostReport) { r.Calls.Errors["churn join: "+errorClass(err)]++ })
			continue
		}
		live = append(live, c)
	}
}

// join starts conductor k of the churn and serves the conductor topic.
func (h *Host) join(k int) (*churner, error) {
	s := &h.spec
	addr := controlAddr(s.Conductors + s.Schedulers + 1 + k)
	ctx, cancel := context.WithTimeout(h.churnCtx, s.Timeout)
	defer cancel()
	host := fmt.Sprintf("scale-churn-%d", k)
	n, err := relay.Start(ctx, append(h.nodeOptions(addr, k), relay.WithHost(host))...)
	if err != nil {
		return nil, fmt.Errorf("churn conductor %d (%s): %w", k, addr, err)
	}
	c := &churner{node: n, rec: Churn{Host: host}}
	c.srv, err = n.Serve(relay.Target{Topic: TopicConductor, Server: fmt.Sprintf("conductor-churn-%d", k)})
	if err != nil {
		n.Close()
		return nil, fmt.Errorf("churn conductor %d (%s): %w", k, addr, err)
	}
	c.srv.Handle(MethodReport, func(_ context.Context, r *relay.Request) (any, error) {
		c.first.CompareAndSwap(0, time.Now().UnixNano())
		var from string
		return from, r.Decode(&from)
	})
	c.rec.Joined = time.Now().UnixNano()
	return c, nil
}

// retire closes c's node in the background and records what it saw.
func (h *Host) retire(c *churner, wg *sync.WaitGroup) {
	c.rec.First = c.first.Load()
	if h.churnCtx.Err() == nil {
		c.rec.Closed = time.Now().UnixNano()
	}
	h.rec.update(func(r *HostReport) { r.Churn = append(r.Churn, c.rec) })
	wg.Go(func() {
		c.node.Close()
		st := c.node.Stats()
		h.rec.update(func(*HostReport) { addCounters(h.rec.retired, st.Stats) })
	})
}

// churnReport matches the joins and leaves of the control plane with the
// calls the computes saw refused.
func churnReport(every time.Duration, cs []Churn, hosts []HostReport) ChurnReport {
	rep := ChurnReport{Every: every}
	var joins, leaves []time.Duration
	stale := map[string][]int64{} // by the host that refused
	for _, h := range hosts {
		for _, s := range h.Stale {
			stale[s.Host] = append(stale[s.Host], s.Sent)
		}
	}
	for _, c := range cs {
		rep.Joins++
		if c.First == 0 {
			rep.JoinNever++
		} else {
			joins = append(joins, time.Duration(c.First-c.Joined))
		}
		if c.Left == 0 {
			continue
		}
		rep.Leaves++
		var last time.Duration
		for _, s := range stale[c.Host] {
			if s < c.Left {
				rep.InFlight++
				continue
			}
			rep.Stale++
			last = max(last, time.Duration(s-c.Left))
		}
		leaves = append(leaves, last)
	}
	rep.JoinP50, rep.JoinMax = p50Max(joins)
	rep.LeaveP50, rep.LeaveMax = p50Max(leaves)
	return rep
}

func p50Max(ds []time.Duration) (p50, mx time.Duration) {
	if len(ds) == 0 {
		return 0, 0
	}
	return latency.Summarize(ds).P50, slices.Max(ds)
}

// write prints the churn.
func (c ChurnReport) write(w io.Writer) {
	if c.Every == 0 {
		return
	}
	fmt.Fprintf(w, "  churn (a conductor joins and the previous one leaves every %v): %d joined, the first call reached a joiner after p50 %v, max %v (%d reached by none);\n",
		c.Every, c.Joins, ms(c.JoinP50), ms(c.JoinMax), c.JoinNever)
	fmt.Fprintf(w, "      %d left: %d calls sent after a leave still reached the leaver (refused, ErrNoSuchMethod; %d more were on the way as it left), the last sent p50 %v, max %v after it left\n",
		c.Leaves, c.Stale, c.InFlight, ms(c.LeaveP50), ms(c.LeaveMax))
}
