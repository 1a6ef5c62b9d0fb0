package sockets

import (
	"fmt"
	"time"

	zmq "github.com/pebbe/zmq4"
)

// One DEALER of a Dealers loop: connecting it, sending what it holds,
// reading its monitor, refusing and closing it.

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

// connect makes a DEALER to peer, with its monitor, in a free slot. Its
// monitor is read next turn (fresh).
func (l *dealersLoop) connect(peer *Peer) (*dealer, error) {
	d, h := l.d, l.h
	s, err := newSocket(l.zctx, h, zmq.DEALER, d.cfg.Options)
	if err != nil {
		return nil, fmt.Errorf("sockets: dealer to %s: %w", peer.addr, err)
	}
	mon, err := newMonitor(l.zctx, s.z, lostEvents)
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
	slot := len(l.all)
	if n := len(l.free); n > 0 {
		slot, l.free = l.free[n-1], l.free[:n-1]
	} else {
		l.all = append(l.all, nil)
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
		l.free = append(l.free, slot)
		return nil, fmt.Errorf("sockets: dealer to %s: %w", peer.addr, err)
	}
	l.byPeer[peer] = dl
	l.all[slot] = dl
	l.open++
	l.fresh = append(l.fresh, dl)
	return dl, nil
}

// closeDealer closes dl and frees its slot.
func (l *dealersLoop) closeDealer(dl *dealer) {
	l.h.p.remove(2 * dl.slot)
	l.h.p.remove(2*dl.slot + 1)
	dl.mon.close()
	dl.s.close(l.h)
	dl.closed = true
	delete(l.byPeer, dl.peer)
	l.all[dl.slot] = nil
	l.free = append(l.free, dl.slot)
	l.open--
}

// handshake reads dl's monitor: a refused handshake refuses dl; a lost
// connection or a successful one is reported; a dropped connection
// reports what it may have lost.
func (l *dealersLoop) handshake(dl *dealer) error {
	d := l.d
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
		l.refuse(dl, why)
	case lost && d.cfg.OnLost != nil:
		d.cfg.OnLost(dl.peer.addr)
	case up && d.cfg.OnUp != nil:
		d.cfg.OnUp(dl.peer.addr)
	}
	if dropped && why == "" {
		d.connectionLost(dl)
	}
	return nil
}

// refuse drops what dl holds with the server's refusal, closes it (a
// refused handshake is not retried by libzmq), and refuses new messages
// for it for a while.
func (l *dealersLoop) refuse(dl *dealer, reason string) {
	d := l.d
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
	l.closeDealer(dl)
	l.refused[dl.peer] = refusal{until: time.Now().Add(RefuseBackoff), err: err}
}

// send packs dl.held and sends what the socket takes; the rest stays
// held, in order. It reports whether the socket became readable.
func (l *dealersLoop) send(dl *dealer) (readable bool) {
	if len(dl.held) == 0 {
		return false
	}
	d, p := l.d, &l.p
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
		l.track(dl, handed, sent)
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

// track follows the first handed messages of dl.held, just handed to
// libzmq (DealersConfig.Track); sent of them left the held list.
func (l *dealersLoop) track(dl *dealer, handed, sent int) {
	now := time.Now().UnixNano()
	for i := range dl.held[:handed] {
		rec := dl.held[i].Rec
		t, id := l.d.cfg.Track(rec)
		dl.unconf.sentRec(rec, t, id, now)
	}
	if sent < len(dl.held) {
		dl.unconf.blocked(now)
	}
}
