package sockets

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	zmq "github.com/pebbe/zmq4"
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

// dealer is one DEALER socket, its monitor, and what it could not send
// yet. Loop only.
type dealer struct {
	slot   int // its index in the loop's table; its socket's poller tag is 2×slot, its monitor's 2×slot+1
	peer   *Peer
	s      *batchSocket
	mon    *monitor
	unconf *unconfirmed // nil without DealersConfig.Track
	held   []Message    // taken from the peer, not sent yet (the socket would block)
	listed bool         // in the loop's reading list
	paused bool         // not read until Resume
	closed bool         // closed (refused, or idle): skipped by every list it is still in
	// sending and holding2 mark a dealer while the loop builds its lists.
	sending, holding2 bool
}

// refusal is a server that refused this loop's connection lately.
type refusal struct {
	until time.Time
	err   error
}

// StartDealers starts a Dealers loop in a new goroutine, sending what the
// queues of peers hold.
func StartDealers(zctx *Context, peers *Peers, cfg DealersConfig) (*Dealers, error) {
	d := &Dealers{cfg: cfg, peers: peers}
	h, err := start("dealers", cfg.OnFail, func(h *handle, ready func()) error {
		ready()
		return d.run(zctx, h)
	})
	if err != nil {
		return nil, err
	}
	d.handle = h
	return d, nil
}

// Resume restarts reading from DEALERs that OnRecv paused. Safe for
// concurrent use.
func (d *Dealers) Resume() {
	d.resume.Store(true)
	d.peers.wake()
}

// Runs in the loop's goroutine; owns every DEALER it makes.
func (d *Dealers) run(zctx *Context, h *handle) error {
	byPeer := make(map[*Peer]*dealer)
	refused := make(map[*Peer]refusal)
	d.peers.attach(h.p)
	defer d.peers.attach(nil)
	var (
		all     []*dealer // by slot; nil slots are free
		free    []int     // free slots
		open    int       // DEALERs open
		fired   []int
		rc      receiver
		p       packer
		dirty   []*Peer
		touched []*dealer
		fresh   []*dealer // connected this turn: their monitors are read next turn
	)
	p.limit = batchLimit(d.cfg.Options.MaxMsgSize)
	defer func() {
		for _, dl := range all {
			if dl != nil {
				if h.linger == 0 {
					d.connectionLost(dl) // closed with linger 0: its pipe is lost
				}
				dl.peer.requeue(dl.held)
				dl.mon.close()
				dl.s.close(h)
			}
		}
	}()

	connect := func(peer *Peer) (*dealer, error) {
		s, err := newSocket(zctx, h, zmq.DEALER, d.cfg.Options)
		if err != nil {
			return nil, fmt.Errorf("sockets: dealer to %s: %w", peer.addr, err)
		}
		mon, err := newMonitor(zctx, s.z, lostEvents)
		if err == nil {
			if err = s.z.SetImmediate(true); err == nil {
				err = connect(s.z, d.cfg.Options.Curve, peer.addr)
			}
		}
		if err != nil {
			mon.close()
			s.close0()
			return nil, fmt.Errorf("sockets: dealer to %s: %w", peer.addr, err)
		}
		slot := len(all)
		if n := len(free); n > 0 {
			slot, free = free[n-1], free[:n-1]
		} else {
			all = append(all, nil)
		}
		dl := &dealer{slot: slot, peer: peer, s: s, mon: mon}
		if d.cfg.Track != nil {
			dl.unconf = newUnconfirmed(d.cfg.Options)
		}
		err = h.p.add(s.z, 2*slot)
		if err == nil {
			if err = h.p.add(mon.pair, 2*slot+1); err != nil {
				h.p.remove(2 * slot)
			}
		}
		if err != nil {
			mon.close()
			s.close0()
			free = append(free, slot)
			return nil, fmt.Errorf("sockets: dealer to %s: %w", peer.addr, err)
		}
		byPeer[peer] = dl
		all[slot] = dl
		open++
		fresh = append(fresh, dl)
		return dl, nil
	}
	closeDealer := func(dl *dealer) {
		h.p.remove(2 * dl.slot)
		h.p.remove(2*dl.slot + 1)
		dl.mon.close()
		dl.s.close(h)
		dl.closed = true
		delete(byPeer, dl.peer)
		all[dl.slot] = nil
		free = append(free, dl.slot)
		open--
	}
	// refuse drops what dl holds with the server's refusal, closes it (a
	// refused handshake is not retried by libzmq), and refuses new
	// messages for it for a while.
	refuse := func(dl *dealer, reason string) {
		err := fmt.Errorf("%w: %s: %s", ErrUnauthorized, dl.peer.addr, reason)
		if d.cfg.OnRefused != nil {
			d.cfg.OnRefused(dl.peer.addr, err) // before the drops end the calls
		}
		for i := range dl.held {
			d.drop(dl.peer.addr, &dl.held[i], err)
		}
		clear(dl.held)
		dl.held = dl.held[:0]
		dl.peer.settle(0)
		closeDealer(dl)
		refused[dl.peer] = refusal{until: time.Now().Add(RefuseBackoff), err: err}
	}
	// send packs dl.held and sends what the socket takes; the rest stays
	// held, in order. It reports whether the socket became readable.
	send := func(dl *dealer) (readable bool) {
		if len(dl.held) == 0 {
			return false
		}
		p.reset()
		for i := range dl.held {
			p.add(nil, dl.held[i].Rec)
		}
		done, readable, err := dl.s.send(p.bytes())
		sent := p.sent(done)
		handed := sent // to libzmq
		if err != nil && !isAgain(err) {
			from, to := p.messagesOf(p.indexAt(done))
			for j := from; j < to; j++ {
				d.drop(dl.peer.addr, &dl.held[j], fmt.Errorf("sockets: send to %s: %w", dl.peer.addr, err))
			}
			handed, sent = from, to
		}
		if dl.unconf != nil {
			now := time.Now().UnixNano()
			for i := range dl.held[:handed] {
				rec := dl.held[i].Rec
				t, id := d.cfg.Track(rec)
				dl.unconf.sentRec(rec, t, id, now)
			}
			if sent < len(dl.held) {
				dl.unconf.blocked(now)
			}
		}
		if d.cfg.Release != nil {
			for i := range dl.held[:sent] {
				if dl.held[i].Pooled {
					d.cfg.Release(dl.held[i].Ref)
				}
			}
		}
		n := copy(dl.held, dl.held[sent:])
		clear(dl.held[n:])
		dl.held = dl.held[:n]
		return readable
	}

	var (
		reading, nextReading []*dealer // dealers to read from this turn
		paused               []*dealer
		holding, nextHolding []*dealer // dealers holding unsent messages
	)
	read := func(dl *dealer) {
		if !dl.listed && !dl.paused && !dl.closed {
			dl.listed = true
			reading = append(reading, dl)
		}
	}
	pending := func() bool { return d.peers.hasDirty() || d.resume.Load() }
	lastSweep := time.Now()
	for !quitting(h.quit) {
		if d.resume.Swap(false) {
			for _, dl := range paused {
				dl.paused = false
				read(dl)
			}
			clear(paused)
			paused = paused[:0]
		}
		// Handshakes that ended (the monitors that fired, and those of new
		// dealers, read once to arm their edge), then inbound: the
		// dealers with an edge, or more to read.
		for _, dl := range fresh {
			fired = append(fired, 2*dl.slot+1)
		}
		clear(fresh)
		fresh = fresh[:0]
		for _, tag := range fired {
			if dl := all[tag/2]; tag%2 == 1 && dl != nil {
				var why string
				var up, lost bool // the last event said: connected / gone
				dropped := false  // a connection dropped (not a connect that failed)
				if err := dl.mon.drainLost(false, func(failed bool, reason, _ string) {
					if failed && why == "" {
						why = reason
					}
					up, lost = !failed, false
				}, func(_ string, disconnected bool) {
					up, lost = false, true
					dropped = dropped || disconnected
				}); err != nil {
					return fmt.Errorf("sockets: dealer to %s: %w", dl.peer.addr, err)
				}
				switch {
				case why != "":
					refuse(dl, why)
				case lost && d.cfg.OnLost != nil:
					d.cfg.OnLost(dl.peer.addr)
				case up && d.cfg.OnUp != nil:
					d.cfg.OnUp(dl.peer.addr)
				}
				if dropped && why == "" {
					d.connectionLost(dl)
				}
			}
		}
		for _, tag := range fired {
			dl := all[tag/2]
			if dl == nil || tag%2 == 1 {
				continue // closed since, or a monitor
			}
			read(dl)
			if len(dl.held) > 0 {
				touched = append(touched, dl) // an edge may mean room to send
			}
		}
		// With nothing fired after a sleep, the backlog tick passed (or a
		// wake-up came): retry every held send.
		retry := len(fired) == 0 && len(holding) > 0
		fired = fired[:0]
		busy := false
		for _, dl := range reading {
			dl.listed = false
			if dl.closed {
				continue
			}
			batch, res := rc.recv(dl.s)
			if res.err != nil {
				return fmt.Errorf("sockets: recv from %s: %w", dl.peer.addr, res.err)
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
					paused = append(paused, dl)
					continue
				}
			}
			if res.more {
				dl.listed = true
				nextReading = append(nextReading, dl)
			}
		}
		clear(reading)
		reading, nextReading = nextReading, reading[:0]
		// Outbound: peers with new messages, and held ones to retry.
		dirty = d.peers.takeDirty(dirty[:0])
		for _, peer := range dirty {
			dl := byPeer[peer]
			if dl == nil {
				var err error
				if r, ok := refused[peer]; ok && time.Now().Before(r.until) {
					err = r.err
				} else {
					delete(refused, peer)
					dl, err = connect(peer)
				}
				if err != nil {
					msgs := peer.take(nil)
					for i := range msgs {
						d.drop(peer.addr, &msgs[i], err)
					}
					peer.settle(0)
					continue
				}
				read(dl)
			}
			dl.held = peer.take(dl.held)
			touched = append(touched, dl)
			busy = true
		}
		if retry {
			touched = append(touched, holding...)
		}
		now := int64(0)
		for _, dl := range touched {
			if dl.sending || dl.closed {
				continue // listed twice this turn, or refused
			}
			dl.sending = true
			if send(dl) {
				read(dl)
			}
			if len(dl.held) > 0 {
				if now == 0 {
					now = time.Now().UnixNano()
				}
				dl.held = expire(dl.held, now, func(m *Message) { d.drop(dl.peer.addr, m, ErrExpired) })
			}
			dl.peer.settle(len(dl.held))
		}
		// Who holds messages now: those held before and not touched, and
		// the touched ones that still hold some.
		for _, dl := range holding {
			if !dl.sending && !dl.closed && len(dl.held) > 0 && !dl.holding2 {
				dl.holding2 = true
				nextHolding = append(nextHolding, dl)
			}
		}
		for _, dl := range touched {
			dl.sending = false
			if !dl.closed && len(dl.held) > 0 && !dl.holding2 {
				dl.holding2 = true
				nextHolding = append(nextHolding, dl)
			}
		}
		for _, dl := range nextHolding {
			dl.holding2 = false
		}
		clear(holding)
		holding, nextHolding = nextHolding, holding[:0]
		clear(touched)
		touched = touched[:0]
		if d.cfg.IdleTimeout > 0 && open > 0 {
			if now := time.Now(); now.Sub(lastSweep) >= d.cfg.IdleTimeout/2 {
				lastSweep = now
				for peer, r := range refused {
					if now.After(r.until) {
						delete(refused, peer)
					}
				}
				for _, dl := range all {
					if dl == nil || len(dl.held) > 0 || dl.listed || dl.paused ||
						!d.peers.forget(dl.peer, now.Add(-d.cfg.IdleTimeout).UnixNano()) {
						continue
					}
					closeDealer(dl)
				}
			}
		}
		if !busy && len(reading) == 0 {
			timeout := backlogTimeout(len(holding) > 0)
			if timeout == 0 && d.cfg.IdleTimeout > 0 && open > 0 {
				timeout = d.cfg.IdleTimeout / 2 // wake to forget idle servers
			}
			fired = h.sleep(h.p, &d.peers.waker, pending, timeout, fired)
		}
	}
	return nil
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
