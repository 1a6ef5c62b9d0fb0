package relay

import (
	"bytes"
	"sync"

	"github.com/relay-dev/relay/envelope"
	"github.com/relay-dev/relay/sockets"
)

// Cancellation travels (docs/PROTOCOL.md §4.7): a caller whose ctx is
// cancelled before the answer sends a CANCEL record with the call's msg_id
// the way the call went; the server cancels the context of that call's
// handler, if it runs, and sends no answer.

// cancelRemote sends the CANCEL of the call whose header is h to addr,
// where the call went. It is best effort: a full queue loses it, and the
// handler then runs to its deadline.
func (n *Node) cancelRemote(h *envelope.Header, addr string) {
	c := *h
	c.Kind, c.AckWanted, c.Meta = envelope.KindCancel, false, nil
	_, _ = n.peers.TryPush(addr, sockets.Message{Rec: c.AppendRecord(nil, nil), Deadline: h.Deadline})
}

// onCancel is the intake's handler of a CANCEL record: it cancels the
// handler's context of the call it names, when that call runs here and
// came from the same caller. Runs in a socket loop's goroutine.
func (n *Node) onCancel(id envelope.MsgID, caller []byte) {
	rc := n.running.get(id)
	if rc != nil && bytes.Equal(rc.caller, caller) {
		rc.cancel()
	}
}

// running is the table of the calls whose handlers run now, by msg_id, so
// that a CANCEL finds their contexts. Adding and removing allocate
// nothing once the map has grown; each holds the one lock for a map
// operation. Safe for concurrent use.
type running struct {
	mu   sync.Mutex
	byID map[envelope.MsgID]*requestCtx
}

func newRunning() *running {
	return &running{byID: make(map[envelope.MsgID]*requestCtx)}
}

func (r *running) add(id envelope.MsgID, rc *requestCtx) {
	r.mu.Lock()
	r.byID[id] = rc
	r.mu.Unlock()
}

// remove removes id's entry if it is rc.
func (r *running) remove(id envelope.MsgID, rc *requestCtx) {
	r.mu.Lock()
	if r.byID[id] == rc {
		delete(r.byID, id)
	}
	r.mu.Unlock()
}

func (r *running) get(id envelope.MsgID) *requestCtx {
	r.mu.Lock()
	rc := r.byID[id]
	r.mu.Unlock()
	return rc
}
