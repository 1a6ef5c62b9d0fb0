package sockets

import (
	"context"
	"sync"
	"sync/atomic"
)

// Peers are the send queues of a Dealers loop, one per server endpoint.
// They outlive the loops that drain them (a restarted loop connects new
// DEALERs and sends what is queued). Each queue is bounded on its own, so a
// slow or absent server holds up only its own messages, and a full queue is
// ErrBackPressure to the caller who pushes, never a drop later. Safe for
// concurrent use.
type Peers struct {
	waker
	max    int      // per peer: queued plus held by the loop
	byAddr sync.Map // endpoint -> *Peer

	// mu guards dirty.
	mu    sync.Mutex
	dirty []*Peer // peers with messages the loop has not taken yet
}

// Peer is the send queue towards one endpoint.
type Peer struct {
	addr  string
	peers *Peers

	// mu guards the fields below.
	mu    sync.Mutex
	q     []Message
	dirty bool // in peers.dirty
	room  room

	held  atomic.Int64 // messages the loop took and holds unsent
	taken atomic.Int64 // messages taken in the loop's current turn
}

// NewPeers makes the queues of a Dealers loop, each holding at most
// perPeer messages (queued, or held by the loop until the socket takes
// them).
func NewPeers(perPeer int) *Peers {
	return &Peers{waker: newWaker(), max: max(perPeer, 1)}
}

// Get returns the queue towards addr, making it on first use.
func (ps *Peers) Get(addr string) *Peer {
	if p, ok := ps.byAddr.Load(addr); ok {
		return p.(*Peer)
	}
	p, _ := ps.byAddr.LoadOrStore(addr, &Peer{addr: addr, peers: ps})
	return p.(*Peer)
}

// all returns every peer.
func (ps *Peers) all() []*Peer {
	var all []*Peer
	ps.byAddr.Range(func(_, p any) bool {
		all = append(all, p.(*Peer))
		return true
	})
	return all
}

// Addr returns the peer's endpoint.
func (p *Peer) Addr() string { return p.addr }

// TryPush queues m for the peer; ErrBackPressure when its queue is full.
func (p *Peer) TryPush(m Message) error {
	p.mu.Lock()
	if len(p.q)+int(p.held.Load()) >= p.peers.max {
		p.mu.Unlock()
		return ErrBackPressure
	}
	p.pushLocked(m)
	return nil
}

// Push queues m for the peer, waiting for room until ctx is done.
func (p *Peer) Push(ctx context.Context, m Message) error {
	for {
		p.mu.Lock()
		if len(p.q)+int(p.held.Load()) < p.peers.max {
			p.pushLocked(m)
			return nil
		}
		ch := p.room.wait()
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// pushLocked appends m, marks the peer dirty and wakes the loop; it
// unlocks p.mu.
func (p *Peer) pushLocked(m Message) {
	p.q = append(p.q, m)
	mark := !p.dirty
	p.dirty = true
	p.mu.Unlock()
	if mark {
		ps := p.peers
		ps.mu.Lock()
		ps.dirty = append(ps.dirty, p)
		ps.mu.Unlock()
	}
	p.peers.wake()
}

// hasDirty reports whether a peer has messages the loop has not taken.
func (ps *Peers) hasDirty() bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return len(ps.dirty) > 0
}

// takeDirty returns the peers with new messages. Loop only.
func (ps *Peers) takeDirty(dst []*Peer) []*Peer {
	ps.mu.Lock()
	dst = append(dst, ps.dirty...)
	clear(ps.dirty)
	ps.dirty = ps.dirty[:0]
	ps.mu.Unlock()
	return dst
}

// take moves the peer's queued messages to dst. Loop only.
func (p *Peer) take(dst []Message) []Message {
	p.mu.Lock()
	p.dirty = false
	p.taken.Add(int64(len(p.q)))
	dst = append(dst, p.q...)
	clear(p.q)
	if cap(p.q) > 8192 {
		p.q = nil // give back what a burst grew
	} else {
		p.q = p.q[:0]
	}
	p.mu.Unlock()
	return dst
}

// settle records what the loop holds unsent after a turn, and wakes
// pushers waiting for room. Loop only.
func (p *Peer) settle(held int) {
	p.held.Store(int64(held))
	p.taken.Store(0)
	p.mu.Lock()
	if len(p.q)+held < p.peers.max {
		p.room.notify()
	}
	p.mu.Unlock()
}

// unsent returns the messages queued, taken or held.
func (p *Peer) unsent() int {
	p.mu.Lock()
	n := len(p.q)
	p.mu.Unlock()
	return n + int(p.taken.Load()) + int(p.held.Load())
}

// Unsent returns the messages of every peer not sent yet: queued, or held
// by the loop (waiting for a peer to connect or to take more).
func (ps *Peers) Unsent() int {
	n := 0
	for _, p := range ps.all() {
		n += p.unsent()
	}
	return n
}

// Drain removes every queued message of every peer and hands it to f. It is
// for shutdown, when no loop runs any more.
func (ps *Peers) Drain(f func(addr string, m Message)) {
	ps.mu.Lock()
	clear(ps.dirty)
	ps.dirty = ps.dirty[:0]
	ps.mu.Unlock()
	for _, p := range ps.all() {
		for _, m := range p.take(nil) {
			f(p.addr, m)
		}
		p.settle(0)
	}
}

// requeue puts messages a stopping loop held back at the front of the
// peer's queue, for the next loop. Loop only.
func (p *Peer) requeue(ms []Message) {
	if len(ms) == 0 {
		return
	}
	p.mu.Lock()
	p.q = append(append(make([]Message, 0, len(ms)+len(p.q)), ms...), p.q...)
	mark := !p.dirty
	p.dirty = true
	p.mu.Unlock()
	p.held.Store(0)
	if mark {
		ps := p.peers
		ps.mu.Lock()
		ps.dirty = append(ps.dirty, p)
		ps.mu.Unlock()
	}
}
