package sockets

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Peers are the send queues of a Dealers loop, one per server endpoint.
// They outlive the loops that drain them (a restarted loop connects new
// DEALERs and sends what is queued). Each queue is bounded on its own, so a
// slow or absent server holds up only its own messages, and a full queue is
// ErrBackPressure to the caller who pushes, never a drop later. Safe for
// concurrent use.
type Peers struct {
	waker
	max      int          // per peer: queued plus held by the loop
	maxPeers int          // peers at once; 0: no bound
	byAddr   sync.Map     // endpoint -> *Peer
	count    atomic.Int64 // peers in byAddr

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

	held     atomic.Int64 // messages the loop took and holds unsent
	taken    atomic.Int64 // messages taken in the loop's current turn
	lastUse  atomic.Int64 // Unix ns of the last push
	inflight atomic.Int64 // requests sent here whose answers are awaited (Answered)
	gone     bool         // forgotten by the loop; guarded by mu
}

// NewPeers makes the queues of a Dealers loop, each holding at most
// perPeer messages (queued, or held by the loop until the socket takes
// them), and at most maxPeers of them at once (0: no bound): a push
// towards one more endpoint is ErrTooManyPeers until an idle one is
// forgotten.
func NewPeers(perPeer, maxPeers int) *Peers {
	return &Peers{waker: newWaker(), max: max(perPeer, 1), maxPeers: maxPeers}
}

// errGone is what a push to a forgotten peer gets: Push and TryPush then
// use a fresh one.
var errGone = errors.New("sockets: peer forgotten")

// Get returns the queue towards addr, making it on first use. It returns
// nil when that would make more peers than the limit.
func (ps *Peers) Get(addr string) *Peer {
	if p, ok := ps.byAddr.Load(addr); ok {
		return p.(*Peer)
	}
	if ps.maxPeers > 0 && ps.count.Load() >= int64(ps.maxPeers) {
		return nil
	}
	p, loaded := ps.byAddr.LoadOrStore(addr, &Peer{addr: addr, peers: ps})
	if !loaded {
		ps.count.Add(1)
	}
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

// TryPush queues m for the peer at addr; ErrBackPressure when its queue is
// full. It returns the peer it queued on.
func (ps *Peers) TryPush(addr string, m Message) (*Peer, error) {
	for {
		p := ps.Get(addr)
		if p == nil {
			return nil, fmt.Errorf("%w: %d, and %s would be one more", ErrTooManyPeers, ps.maxPeers, addr)
		}
		err := p.tryPush(m)
		if err != errGone {
			return p, err
		}
	}
}

// Push queues m for the peer at addr, waiting for room until ctx is done.
// It returns the peer it queued on.
func (ps *Peers) Push(ctx context.Context, addr string, m Message) (*Peer, error) {
	for {
		p := ps.Get(addr)
		if p == nil {
			return nil, fmt.Errorf("%w: %d, and %s would be one more", ErrTooManyPeers, ps.maxPeers, addr)
		}
		err := p.push(ctx, m)
		if err != errGone {
			return p, err
		}
	}
}

// Answered records that an answer awaited from the peer (a request pushed
// with Awaited) came, or will not.
func (p *Peer) Answered() { p.inflight.Add(-1) }

// Awaited records that a request pushed to the peer awaits its answer, so
// that the peer is not forgotten meanwhile. Call Answered at its end.
func (p *Peer) Awaited() { p.inflight.Add(1) }

func (p *Peer) tryPush(m Message) error {
	p.mu.Lock()
	if p.gone {
		p.mu.Unlock()
		return errGone
	}
	if len(p.q)+int(p.held.Load()) >= p.peers.max {
		p.mu.Unlock()
		return ErrBackPressure
	}
	p.pushLocked(m)
	return nil
}

func (p *Peer) push(ctx context.Context, m Message) error {
	for {
		p.mu.Lock()
		if p.gone {
			p.mu.Unlock()
			return errGone
		}
		if len(p.q)+int(p.held.Load()) < p.peers.max {
			p.pushLocked(m)
			return nil
		}
		if err := p.room.await(ctx, &p.mu); err != nil {
			return err
		}
	}
}

// pushLocked appends m, marks the peer dirty and wakes the loop; it
// unlocks p.mu.
func (p *Peer) pushLocked(m Message) {
	p.lastUse.Store(time.Now().UnixNano())
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
	dst = takeQueue(dst, &p.q, 8192)
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
// Unsent returns the messages of p's queue not handed to its socket yet
// (queued, or held while the socket would block or is not connected).
// Safe for concurrent use.
func (p *Peer) Unsent() int { return p.unsent() }

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
	p.q = prepend(ms, p.q)
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

// forget removes the peer, if it has been idle since before idleSince with
// nothing queued, held or awaited: later pushes to its endpoint make a new
// one. It reports whether it did. Loop only.
func (ps *Peers) forget(p *Peer, idleSince int64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.q) > 0 || p.held.Load() > 0 || p.inflight.Load() > 0 || p.lastUse.Load() > idleSince || p.dirty {
		return false
	}
	p.gone = true
	if ps.byAddr.CompareAndDelete(p.addr, p) {
		ps.count.Add(-1)
	}
	return true
}
