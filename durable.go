package relay

import (
	"time"

	"github.com/relay-dev/relay/actors"
)

// resendStored sends again the durable casts an earlier process of this
// data directory left unacknowledged, each to where it went, until it is
// acknowledged or its deadline passes.
func (n *Node) resendStored() error {
	if n.store == nil {
		return nil
	}
	casts, err := n.store.Casts(time.Now())
	if err != nil {
		return err
	}
	for _, sc := range casts {
		c := n.pending.GetFor(sc.ID, sc.Deadline)
		if len(sc.Rec) > 3 && sc.Rec[3] == 0 {
			sc.Rec[3] = 1 // the attempt byte: this is a resend
		}
		c.Rec, c.Addr = sc.Rec, sc.Addrs[0]
		n.resender.Resent(c, sc.Addrs, true)
		c.OnFinish(func(res actors.Result) { n.settled(c, res, true) })
		n.pending.Add(c)
		_ = n.push(n.base, sc.Addrs[0], sc.Rec, sc.Deadline) // a full queue: the resender tries again
		n.resender.Schedule(c)
	}
	if len(casts) > 0 {
		n.log.Info("sending again the casts a previous process left unacknowledged", "count", len(casts))
	}
	return nil
}
