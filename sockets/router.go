package sockets

import (
	"fmt"
	"sync/atomic"
	"time"

	zmq "github.com/pebbe/zmq4"
)

// unreachableGrace is how long a reply without a deadline waits for its peer
// to (re)connect before it is dropped.
const unreachableGrace = time.Second

// RouterConfig configures a Router loop.
type RouterConfig struct {
	// Bind says where the ROUTER binds. A fixed port is retried for up to
	// Bind.Retry while it is busy (a restarted loop rebinding its
	// predecessor's port).
	Bind    Bind
	Options Options
	// BacklogMax bounds the replies held for peers that cannot take them
	// yet (not connected, or at their high-water mark).
	BacklogMax int
	// OnRecv gets each batch the socket held, in packed form ([routing-id,
	// payload] messages, see Batch; with Options.Curve [routing-id,
	// payload, user-id], the user-id being the client's public key in Z85
	// as the ZAP handler admitted it); the batch is the callee's to keep. It
	// runs in the loop's goroutine and must not block. It returns true to
	// pause reading (the consumer is full) until Resume is called.
	OnRecv func(batch Batch) (pause bool)
	// OnDropped counts messages dropped before OnRecv: with too many
	// frames (malformed), or larger than Options.MaxMsgSize (oversized).
	OnDropped func(malformed, oversized int)
	// OnDrop gets each message the loop gives up on, with the reason.
	OnDrop func(m *Message, err error)
	// OnRefused gets each connection refused at its ZMTP handshake (a
	// client whose key is not on the allow-list, a plaintext client of a
	// CURVE router or the other way round), with why. It runs in the
	// loop's goroutine and must not block.
	OnRefused func(reason string)
	// OnFail gets the error that ended the loop after it was ready.
	OnFail func(err error)
}

// Router is the loop that owns a node's bound ROUTER socket.
type Router struct {
	*handle
	cfg      RouterConfig
	out      *Outbox
	endpoint string
	port     int
	resume   atomic.Bool
}

// StartRouter binds a ROUTER as cfg says and serves it in a new goroutine,
// sending what out holds. It returns once the socket is bound.
func StartRouter(zctx *Context, out *Outbox, cfg RouterConfig) (*Router, error) {
	if cfg.BacklogMax <= 0 {
		cfg.BacklogMax = 10_000
	}
	r := &Router{cfg: cfg, out: out}
	return startLoop("router", cfg.OnFail, r, &r.handle, func(h *handle, ready func()) error {
		return r.run(zctx, h, ready)
	})
}

// Endpoint returns the endpoint others reach the router at, e.g.
// "tcp://127.0.0.1:7001": the bound one, or the advertised address
// (Bind.Advertise) with the bound port.
func (r *Router) Endpoint() string { return r.endpoint }

// Port returns the bound port.
func (r *Router) Port() int { return r.port }

// Resume restarts reading after OnRecv paused it. Safe for concurrent use.
func (r *Router) Resume() {
	r.resume.Store(true)
	r.out.wake()
}

// Tags of a Router's socket and its monitor in its poller.
const (
	tagRouter, tagRouterMonitor = 0, 1
)

// routerLoop is a Router's state in its goroutine. Loop only.
type routerLoop struct {
	r       *Router
	s       *batchSocket
	mons    *monitors
	rc      receiver
	out     routerSender
	paused  bool
	more    bool      // read until EAGAIN: at start, after an edge, a full batch, a send
	pending []Message // taken from the outbox this turn
}

// Runs in the loop's goroutine; owns the ROUTER.
func (r *Router) run(zctx *Context, h *handle, ready func()) error {
	l := &routerLoop{r: r, more: true}
	if err := l.open(zctx, h); err != nil {
		return err
	}
	r.out.attach(h.p)
	defer r.out.attach(nil)
	ready()
	l.out.init(l.s, r.cfg.BacklogMax, r.drop)
	l.out.p.limit = batchLimit(r.cfg.Options.MaxMsgSize)
	defer func() { r.out.requeue(l.out.held.msgs) }()
	if err := h.serve(l, &r.out.waker, l.hasWork); err != nil {
		return err
	}
	r.drain(l.s, &l.rc)
	return nil
}

// open makes, monitors and binds the ROUTER. Runs in the loop's goroutine.
func (l *routerLoop) open(zctx *Context, h *handle) error {
	r := l.r
	s, err := h.socket(zctx, zmq.ROUTER, r.cfg.Options, tagRouter)
	if err != nil {
		return fmt.Errorf("sockets: router: %w", err)
	}
	if r.cfg.Options.Curve != nil {
		s.withUserID()
	}
	if l.mons, err = watch(zctx, h, tagRouterMonitor, refusals(r.cfg.OnRefused), s); err != nil {
		return fmt.Errorf("sockets: router: %w", err)
	}
	l.s = s
	r.endpoint, r.port, err = r.cfg.Bind.bind(s.z)
	return err
}

// hasWork reports whether the loop has something to do: replies queued,
// or a Resume while paused. Runs in the loop's goroutine (in sleep).
func (l *routerLoop) hasWork() bool {
	return l.r.out.Len() > 0 || (l.paused && l.r.resume.Load())
}

// turn reads what the ROUTER holds (unless paused) and sends the replies
// queued and held. Runs in the loop's goroutine.
func (l *routerLoop) turn(fired []int) (sleep bool, timeout time.Duration, err error) {
	r := l.r
	if l.paused && r.resume.Swap(false) {
		l.paused, l.more = false, true
	}
	edge := false
	for _, i := range fired {
		if i == tagRouter {
			edge = true
		} else if _, err := l.mons.handle(i); err != nil {
			return false, 0, fmt.Errorf("sockets: router: %w", err)
		}
	}
	if (edge || l.more) && !l.paused {
		batch, res := l.rc.recv(l.s)
		if res.err != nil {
			return false, 0, fmt.Errorf("sockets: router recv: %w", res.err)
		}
		if res.dropped+res.oversized > 0 && r.cfg.OnDropped != nil {
			r.cfg.OnDropped(res.dropped, res.oversized)
		}
		l.more = res.more
		if batch != nil && r.cfg.OnRecv(Batch{buf: batch, n: res.n}) {
			l.paused = true
		}
	}
	l.pending = r.out.take(l.pending[:0])
	busy := len(l.pending) > 0
	if edge || busy || l.out.held.len() > 0 {
		if l.out.flush(l.pending) {
			l.more = true
		}
	}
	clear(l.pending)
	if l.out.held.len() > 0 {
		l.out.held.expire(time.Now().UnixNano(), ErrUnreachable, r.drop)
	}
	// Replies held for a peer that is gone are not worth a Close's wait.
	r.out.settle()
	return !busy && (!l.more || l.paused), backlogTimeout(l.out.held.len() > 0), nil
}

// drainMax bounds the batches a stopping Router still reads.
const drainMax = 256

// drain hands OnRecv what libzmq had taken in for the socket before it
// closes (a restart, or the node's close): a message read here is handled
// like any other, one left in the socket would be lost unseen. It reads
// until the socket is empty (or drainMax batches), whether or not OnRecv
// asks to pause: what it holds is bounded by the socket's high-water mark.
func (r *Router) drain(s *batchSocket, rc *receiver) {
	for range drainMax {
		batch, res := rc.recv(s)
		if res.err != nil {
			return
		}
		if res.dropped+res.oversized > 0 && r.cfg.OnDropped != nil {
			r.cfg.OnDropped(res.dropped, res.oversized)
		}
		if batch != nil {
			r.cfg.OnRecv(Batch{buf: batch, n: res.n})
		}
		if batch == nil {
			return
		}
	}
}

func (r *Router) drop(m *Message, err error) {
	if r.cfg.OnDrop != nil {
		r.cfg.OnDrop(m, err)
	}
}

// routerSender sends a ROUTER's messages in batches per peer, holding those
// of a peer that cannot take them (not connected, or at its high-water
// mark) in order, without holding up other peers.
type routerSender struct {
	s     *batchSocket
	p     packer
	held  *peerBacklog
	todo  []Message
	batch []Message
	drop  func(*Message, error)
}

func (o *routerSender) init(s *batchSocket, backlogMax int, drop func(*Message, error)) {
	o.s, o.held, o.drop = s, newPeerBacklog(backlogMax), drop
}

// flush sends the held messages, then fresh ones, in order per peer, and
// reports whether the socket became readable meanwhile.
func (o *routerSender) flush(fresh []Message) (readable bool) {
	o.todo = append(o.held.takeAll(o.todo[:0]), fresh...)
	rest := o.todo
	var blocked map[string]bool
	for len(rest) > 0 {
		// Pack what may go; a blocked peer's messages wait behind the
		// ones it could not take. (batch is written at or before the
		// position rest is read from, so it may share its memory.)
		o.p.reset()
		batch := o.batch[:0]
		for _, m := range rest {
			if blocked[string(m.To)] {
				o.held.add(m, o.drop)
				continue
			}
			batch = append(batch, m)
			o.p.add(m.To, m.Rec)
		}
		o.batch = batch
		if len(batch) == 0 {
			break
		}
		done, rd, err := o.s.send(o.p.bytes())
		readable = readable || rd
		if err == nil {
			break
		}
		from, to := o.p.messagesOf(o.p.indexAt(done))
		if blocked == nil {
			blocked = map[string]bool{}
		}
		blocked[string(batch[from].To)] = true
		for j := from; j < to; j++ {
			m := batch[j]
			switch {
			case isAgain(err):
				o.held.add(m, o.drop)
			case isUnreachable(err):
				// The peer may be reconnecting (after our restart or its
				// own): hold until its deadline, or a grace period.
				if m.Deadline == 0 {
					m.Deadline = time.Now().Add(unreachableGrace).UnixNano()
				}
				o.held.add(m, o.drop)
			default:
				o.drop(&m, fmt.Errorf("sockets: router send: %w", err))
			}
		}
		rest = batch[to:]
	}
	clear(o.todo)
	clear(o.batch)
	return readable
}

// peerBacklog holds messages a Router could not send yet, oldest first, with
// how many each peer has held.
type peerBacklog struct {
	msgs []Message
	max  int
	held map[string]int // messages held per peer routing id
}

func newPeerBacklog(max int) *peerBacklog {
	return &peerBacklog{max: max, held: make(map[string]int)}
}

func (b *peerBacklog) len() int { return len(b.msgs) }

// add holds m, or drops it with ErrBackPressure when the backlog is full.
func (b *peerBacklog) add(m Message, drop func(*Message, error)) {
	if len(b.msgs) >= b.max {
		drop(&m, ErrBackPressure)
		return
	}
	b.msgs = append(b.msgs, m)
	b.held[string(m.To)]++
}

// takeAll moves every held message to dst, in order.
func (b *peerBacklog) takeAll(dst []Message) []Message {
	dst = append(dst, b.msgs...)
	clear(b.msgs)
	b.msgs = b.msgs[:0]
	clear(b.held)
	return dst
}

// expire drops messages whose deadline has passed.
func (b *peerBacklog) expire(now int64, reason error, drop func(*Message, error)) {
	kept := b.msgs[:0]
	for _, m := range b.msgs {
		if m.Deadline != 0 && m.Deadline < now {
			mm := m
			if b.held[string(m.To)]--; b.held[string(m.To)] <= 0 {
				delete(b.held, string(m.To))
			}
			drop(&mm, reason)
			continue
		}
		kept = append(kept, m)
	}
	clear(b.msgs[len(kept):])
	b.msgs = kept
}
