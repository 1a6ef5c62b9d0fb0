package sockets

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// DealersConfig configures a Dealers loop.
type DealersConfig struct {
	// Options are the sockets' options; with Options.Curve every DEALER
	// connects with the node's keys to the server key its endpoint carries
	// (curve.WithKey). The DEALERs set no routing id: each connection gets
	// one from the server's ROUTER, which no other peer can claim.
	Options Options
	// OnRecv gets each batch a DEALER held, in packed form (one payload
	// frame per message); the batch is the callee's to keep. It runs in
	// the loop's goroutine and must not block. It returns true to pause
	// reading from that DEALER (the consumer is full) until Resume.
	OnRecv func(addr string, batch Batch) (pause bool)
	// OnDropped counts messages dropped before OnRecv: with too many
	// frames (malformed), or larger than Options.MaxMsgSize (oversized).
	OnDropped func(malformed, oversized int)
	// OnDrop gets each message the loop gives up on, with the reason.
	OnDrop func(addr string, m *Message, err error)
	// OnRefused gets each connection refused at its handshake (err wraps
	// ErrUnauthorized and says why). The loop then drops what it held for
	// the endpoint with err, closes the DEALER, and for RefuseBackoff
	// drops new messages for it with err before it connects again. It
	// runs in the loop's goroutine and must not block.
	OnRefused func(addr string, err error)
	// Track, when set, says how the loop follows each record it sent
	// (with its msg_id): it keeps a copy of each Unconfirmed one (a one-way
	// message without acks) for as long as it may be unread; when the
	// DEALER's connection drops, OnDrop gets each with ErrConnectionLost.
	// An answer to an Answered one (Answers finds them in what the DEALER
	// receives) confirms those sent before it.
	Track func(rec []byte) (Tracking, [16]byte)
	// Answers calls f with the msg_id of each answer (reply, error, ack)
	// in b, without consuming b. Needed with Track.
	Answers func(b Batch, f func(id [16]byte))
	// OnLost gets the endpoint of a server whose connection was lost or
	// could not be made (libzmq keeps retrying it), and OnUp one whose
	// connection (its handshake) succeeded. They run in the loop's
	// goroutine and must not block.
	OnLost, OnUp func(addr string)
	// OnFail gets the error that ended the loop after it was ready.
	OnFail func(err error)
	// Release, when set, gets back the Ref of each Pooled message once the
	// loop has sent (copied) its records.
	Release func(ref any)
	// IdleTimeout, when positive, closes a DEALER whose peer had nothing
	// pushed for that long and has nothing queued, held or awaited; its
	// queue is forgotten too (a later push starts afresh). Servers that went
	// away are so forgotten.
	IdleTimeout time.Duration
}

// RefuseBackoff is how long a Dealers loop waits, after a server refused
// a connection, before it connects to it again; meanwhile messages for it
// fail at once with the refusal.
const RefuseBackoff = 500 * time.Millisecond

// ErrTooManyPeers is what a push towards one endpoint more than the limit
// of Peers gets.
var ErrTooManyPeers = errors.New("sockets: too many server connections")

// Dealers is the loop that owns the DEALER sockets towards servers, one per
// server endpoint, connected when the endpoint's queue (in Peers) first has
// a message.
type Dealers struct {
	*handle
	cfg    DealersConfig
	peers  *Peers
	resume atomic.Bool
}

// StartDealers starts a Dealers loop in a new goroutine, sending what the
// queues of peers hold.
func StartDealers(zctx *Context, peers *Peers, cfg DealersConfig) (*Dealers, error) {
	d := &Dealers{cfg: cfg, peers: peers}
	return startLoop("dealers", cfg.OnFail, d, &d.handle, func(h *handle, ready func()) error {
		ready()
		return d.run(zctx, h)
	})
}

// Resume restarts reading from DEALERs that OnRecv paused. Safe for
// concurrent use.
func (d *Dealers) Resume() {
	d.resume.Store(true)
	d.peers.wake()
}

// dealersLoop is a Dealers' state in its goroutine. Loop only.
type dealersLoop struct {
	d    *Dealers
	zctx *Context
	h    *handle

	byPeer  map[*Peer]*dealer
	refused map[*Peer]refusal
	all     []*dealer // by slot; nil slots are free
	free    []int     // free slots
	open    int       // DEALERs open

	rc receiver
	p  packer

	dirty   []*Peer   // peers with new messages, this turn
	touched []*dealer // dealers to send from this turn
	fresh   []*dealer // connected this turn: their monitors are read next turn

	reading, nextReading []*dealer // dealers to read from this turn
	paused               []*dealer
	holding, nextHolding []*dealer // dealers holding unsent messages

	lastSweep time.Time // of idle dealers
}

// Runs in the loop's goroutine; owns every DEALER it makes.
func (d *Dealers) run(zctx *Context, h *handle) error {
	l := &dealersLoop{d: d, zctx: zctx, h: h, byPeer: make(map[*Peer]*dealer),
		refused: make(map[*Peer]refusal), lastSweep: time.Now()}
	l.p.limit = batchLimit(d.cfg.Options.MaxMsgSize)
	d.peers.attach(h.p)
	defer d.peers.attach(nil)
	defer l.close()
	return h.serve(l, &d.peers.waker, d.pending)
}

// pending reports whether the loop has work: a peer with new messages, or
// a Resume. Safe for concurrent use.
func (d *Dealers) pending() bool { return d.peers.hasDirty() || d.resume.Load() }

// close closes every DEALER, reporting what a restart (linger 0) loses,
// and gives what they held back to their peers' queues. Runs in the
// loop's goroutine, at its end.
func (l *dealersLoop) close() {
	for _, dl := range l.all {
		if dl != nil {
			if l.h.linger == 0 {
				l.d.connectionLost(dl) // closed with linger 0: its pipe is lost
			}
			dl.peer.requeue(dl.held)
			dl.mon.close()
			dl.s.close(l.h)
		}
	}
}

// turn serves the monitors and DEALERs that fired, reads what the DEALERs
// hold, sends what the peers' queues have and what is held, and closes
// idle DEALERs. Runs in the loop's goroutine.
func (l *dealersLoop) turn(fired []int) (sleep bool, timeout time.Duration, err error) {
	if l.d.resume.Swap(false) {
		l.unpause()
	}
	// Handshakes that ended (the monitors that fired, and those of new
	// dealers, read once to arm their edge), then inbound: the dealers
	// with an edge, or more to read.
	fresh := len(l.fresh)
	if err := l.handshakes(fired); err != nil {
		return false, 0, err
	}
	for _, tag := range fired {
		dl := l.all[tag/2]
		if dl == nil || tag%2 == 1 {
			continue // closed since, or a monitor
		}
		l.read(dl)
		if len(dl.held) > 0 {
			l.touched = append(l.touched, dl) // an edge may mean room to send
		}
	}
	// With nothing fired after a sleep, the backlog tick passed (or a
	// wake-up came): retry every held send.
	retry := len(fired)+fresh == 0 && len(l.holding) > 0
	busy, err := l.recvAll()
	if err != nil {
		return false, 0, err
	}
	// Outbound: peers with new messages, and held ones to retry.
	if l.takeDirty() {
		busy = true
	}
	if retry {
		l.touched = append(l.touched, l.holding...)
	}
	l.sendTouched()
	l.sweep()
	if busy || len(l.reading) > 0 {
		return false, 0, nil
	}
	timeout = backlogTimeout(len(l.holding) > 0)
	if timeout == 0 && l.d.cfg.IdleTimeout > 0 && l.open > 0 {
		timeout = l.d.cfg.IdleTimeout / 2 // wake to forget idle servers
	}
	return true, timeout, nil
}

// unpause lists the dealers OnRecv paused for reading again.
func (l *dealersLoop) unpause() {
	for _, dl := range l.paused {
		dl.paused = false
		l.read(dl)
	}
	clear(l.paused)
	l.paused = l.paused[:0]
}

// handshakes reads the monitors that fired, then those of the dealers
// connected last turn.
func (l *dealersLoop) handshakes(fired []int) error {
	for _, tag := range fired {
		if dl := l.all[tag/2]; tag%2 == 1 && dl != nil {
			if err := l.handshake(dl); err != nil {
				return err
			}
		}
	}
	for i, dl := range l.fresh {
		l.fresh[i] = nil
		if !dl.closed {
			if err := l.handshake(dl); err != nil {
				l.fresh = l.fresh[:0]
				return err
			}
		}
	}
	l.fresh = l.fresh[:0]
	return nil
}

// read lists dl for reading this turn, unless it is listed, paused or
// closed.
func (l *dealersLoop) read(dl *dealer) {
	if !dl.listed && !dl.paused && !dl.closed {
		dl.listed = true
		l.reading = append(l.reading, dl)
	}
}

// recvAll reads from each dealer listed; those that may hold more are
// listed for the next turn. It reports whether anything came.
func (l *dealersLoop) recvAll() (busy bool, err error) {
	d := l.d
	for _, dl := range l.reading {
		dl.listed = false
		if dl.closed {
			continue
		}
		batch, res := l.rc.recv(dl.s)
		if res.err != nil {
			return false, fmt.Errorf("sockets: recv from %s: %w", dl.peer.addr, res.err)
		}
		if res.dropped+res.oversized > 0 && d.cfg.OnDropped != nil {
			d.cfg.OnDropped(res.dropped, res.oversized)
		}
		if batch != nil {
			busy = true
			if dl.unconf != nil && dl.unconf.tracking() {
				d.cfg.Answers(Batch{buf: batch, n: res.n}, dl.unconf.answered)
			}
			if d.cfg.OnRecv(dl.peer.addr, Batch{buf: batch, n: res.n}) {
				dl.paused = true
				l.paused = append(l.paused, dl)
				continue
			}
		}
		if res.more {
			dl.listed = true
			l.nextReading = append(l.nextReading, dl)
		}
	}
	clear(l.reading)
	l.reading, l.nextReading = l.nextReading, l.reading[:0]
	return busy, nil
}

// takeDirty takes the messages of the peers with new ones into their
// dealers (connecting those without one), to send this turn; the
// messages of a peer that cannot be connected to are dropped. It reports
// whether any peer had new messages.
func (l *dealersLoop) takeDirty() (busy bool) {
	l.dirty = l.d.peers.takeDirty(l.dirty[:0])
	for _, peer := range l.dirty {
		dl := l.byPeer[peer]
		if dl == nil {
			var err error
			if r, ok := l.refused[peer]; ok && time.Now().Before(r.until) {
				err = r.err
			} else {
				delete(l.refused, peer)
				dl, err = l.connect(peer)
			}
			if err != nil {
				msgs := peer.take(nil)
				for i := range msgs {
					l.d.drop(peer.addr, &msgs[i], err)
				}
				peer.settle(0)
				continue
			}
			l.read(dl)
		}
		dl.held = peer.take(dl.held)
		l.touched = append(l.touched, dl)
		busy = true
	}
	clear(l.dirty)
	return busy
}

// sendTouched sends what each dealer touched this turn holds, drops what
// expired, and lists who holds messages now: those held before and not
// touched, and the touched ones that still hold some.
func (l *dealersLoop) sendTouched() {
	now := int64(0)
	for _, dl := range l.touched {
		if dl.sending || dl.closed {
			continue // listed twice this turn, or refused
		}
		dl.sending = true
		if l.send(dl) {
			l.read(dl)
		}
		if len(dl.held) > 0 {
			if now == 0 {
				now = time.Now().UnixNano()
			}
			dl.held = expire(dl.held, now, func(m *Message) { l.d.drop(dl.peer.addr, m, ErrExpired) })
		}
		dl.peer.settle(len(dl.held))
	}
	for _, dl := range l.holding {
		if !dl.sending && !dl.closed && len(dl.held) > 0 && !dl.holding2 {
			dl.holding2 = true
			l.nextHolding = append(l.nextHolding, dl)
		}
	}
	for _, dl := range l.touched {
		dl.sending = false
		if !dl.closed && len(dl.held) > 0 && !dl.holding2 {
			dl.holding2 = true
			l.nextHolding = append(l.nextHolding, dl)
		}
	}
	for _, dl := range l.nextHolding {
		dl.holding2 = false
	}
	clear(l.holding)
	l.holding, l.nextHolding = l.nextHolding, l.holding[:0]
	clear(l.touched)
	l.touched = l.touched[:0]
}

// sweep closes, every half IdleTimeout, the dealers whose peers were idle
// for IdleTimeout and forgets refusals that ended.
func (l *dealersLoop) sweep() {
	idle := l.d.cfg.IdleTimeout
	if idle <= 0 || l.open == 0 {
		return
	}
	now := time.Now()
	if now.Sub(l.lastSweep) < idle/2 {
		return
	}
	l.lastSweep = now
	for peer, r := range l.refused {
		if now.After(r.until) {
			delete(l.refused, peer)
		}
	}
	for _, dl := range l.all {
		if dl == nil || len(dl.held) > 0 || dl.listed || dl.paused ||
			!l.d.peers.forget(dl.peer, now.Add(-idle).UnixNano()) {
			continue
		}
		l.closeDealer(dl)
	}
}

// expire drops the messages of held whose deadline has passed, keeping the
// order of the rest.
func expire(held []Message, now int64, drop func(*Message)) []Message {
	kept := held[:0]
	for _, m := range held {
		if m.Deadline != 0 && m.Deadline < now {
			mm := m
			drop(&mm)
			continue
		}
		kept = append(kept, m)
	}
	clear(held[len(kept):])
	return kept
}

func (d *Dealers) drop(addr string, m *Message, err error) {
	if d.cfg.OnDrop != nil {
		d.cfg.OnDrop(addr, m, err)
	}
}

// connectionLost hands OnDrop, with ErrConnectionLost, each unconfirmed
// message dl sent that its dropped connection may have lost.
func (d *Dealers) connectionLost(dl *dealer) {
	if dl.unconf == nil {
		return
	}
	err := fmt.Errorf("%w: %s", ErrConnectionLost, dl.peer.addr)
	dl.unconf.lost(time.Now().UnixNano(), func(rec []byte) {
		d.drop(dl.peer.addr, &Message{Rec: rec}, err)
	})
}
