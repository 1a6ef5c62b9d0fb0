package sockets

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
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
	h, err := start("router", cfg.OnFail, func(h *handle, ready func()) error {
		return r.run(zctx, h, ready)
	})
	if err != nil {
		return nil, err
	}
	r.handle = h
	return r, nil
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

// Runs in the loop's goroutine; owns the ROUTER.
func (r *Router) run(zctx *Context, h *handle, ready func()) error {
	s, err := newSocket(zctx, h, zmq.ROUTER, r.cfg.Options)
	if err != nil {
		return fmt.Errorf("sockets: router: %w", err)
	}
	defer s.close(h)
	if r.cfg.Options.Curve != nil {
		s.withUserID()
	}
	mon, err := newMonitor(zctx, s.z, 0)
	if err != nil {
		return fmt.Errorf("sockets: router: %w", err)
	}
	defer mon.close()
	if r.endpoint, r.port, err = r.cfg.Bind.bind(s.z); err != nil {
		return err
	}
	if err := h.p.add(s.z, 0); err != nil {
		return fmt.Errorf("sockets: router: %w", err)
	}
	const tagMon = 1
	if err := h.p.add(mon.pair, tagMon); err != nil {
		return fmt.Errorf("sockets: router: %w", err)
	}
	// Read the monitor once: its edge comes only after a read found it empty.
	if err := mon.drain(true, r.refused); err != nil {
		return fmt.Errorf("sockets: router: %w", err)
	}
	r.out.attach(h.p)
	defer r.out.attach(nil)
	ready()

	rc := receiver{}
	var (
		out     routerSender
		paused  bool
		more    = true // read until EAGAIN: at start, after an edge, a full batch, a send
		pending []Message
	)
	out.init(s, r.cfg.BacklogMax, r.drop)
	out.p.limit = batchLimit(r.cfg.Options.MaxMsgSize)
	defer func() { r.out.requeue(out.held.msgs) }()
	var fired []int
	hasWork := func() bool { return r.out.Len() > 0 || (paused && r.resume.Load()) }
	for !quitting(h.quit) {
		if paused && r.resume.Swap(false) {
			paused, more = false, true
		}
		edge := false
		for _, i := range fired {
			if i != tagMon {
				edge = true
				continue
			}
			if err := mon.drain(true, r.refused); err != nil {
				return fmt.Errorf("sockets: router: %w", err)
			}
		}
		fired = fired[:0]
		if (edge || more) && !paused {
			batch, res := rc.recv(s)
			if res.err != nil {
				return fmt.Errorf("sockets: router recv: %w", res.err)
			}
			if res.dropped+res.oversized > 0 && r.cfg.OnDropped != nil {
				r.cfg.OnDropped(res.dropped, res.oversized)
			}
			more = res.more
			if batch != nil && r.cfg.OnRecv(Batch{buf: batch, n: res.n}) {
				paused = true
			}
		}
		pending = r.out.take(pending[:0])
		busy := len(pending) > 0
		if edge || busy || out.held.len() > 0 {
			if out.flush(pending) {
				more = true
			}
		}
		clear(pending)
		if out.held.len() > 0 {
			out.held.expire(time.Now().UnixNano(), ErrUnreachable, r.drop)
		}
		// Replies held for a peer that is gone are not worth a Close's wait.
		r.out.settle()
		if !busy && (!more || paused) {
			fired = h.sleep(h.p, &r.out.waker, hasWork, backlogTimeout(out.held.len() > 0), fired)
		}
	}
	r.drain(s, &rc)
	return nil
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

// refused reports a failed handshake. Runs in the loop's goroutine.
func (r *Router) refused(failed bool, reason, _ string) {
	if failed && r.cfg.OnRefused != nil {
		r.cfg.OnRefused(reason)
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

// Bind says where a loop's socket binds: Host and Port, or with Port 0 a
// free port from [PortMin, PortMax]. A fixed port that is busy is retried
// for up to Retry (a restarted loop rebinding its predecessor's port). A
// Host of the form "ipc://DIR" binds an ipc endpoint in DIR instead, named
// after the port (a node of one host reaches it without TCP). Also lists
// endpoints the socket binds as well, such as an "inproc://" name.
// Advertise, when set, is the address others reach a tcp socket at (the
// endpoint the loop reports), for a Host that is a wildcard ("0.0.0.0") or
// not reachable by others.
type Bind struct {
	Host             string
	Port             int
	PortMin, PortMax int
	Retry            time.Duration
	Also             []string
	Advertise        string
}

// Wildcard reports whether addr means every address of the host
// ("0.0.0.0", "*", "::"): bound, it is no address that others can reach.
func Wildcard(addr string) bool {
	switch strings.Trim(addr, "[]") {
	case "0.0.0.0", "*", "::", "0:0:0:0:0:0:0:0":
		return true
	}
	return false
}

// advertised is the endpoint others reach port at.
func (b Bind) advertised(port int) string {
	host := b.Host
	if b.Advertise != "" {
		host = b.Advertise
	}
	return "tcp://" + joinHostPort(host, port)
}

// bind binds s as b says and returns the advertised endpoint and the port.
// Runs in the loop's goroutine.
func (b Bind) bind(s *zmq.Socket) (string, int, error) {
	ep, port, err := b.bindMain(s)
	if err != nil {
		return "", 0, err
	}
	for _, also := range b.Also {
		if err := s.Bind(also); err != nil {
			return "", 0, bindError(also, err)
		}
	}
	return ep, port, nil
}

func (b Bind) bindMain(s *zmq.Socket) (string, int, error) {
	host := b.Host
	if dir, ok := strings.CutPrefix(host, "ipc://"); ok {
		return b.bindIPC(s, dir)
	}
	if b.Port != 0 {
		ep := "tcp://" + joinHostPort(host, b.Port)
		deadline := time.Now().Add(b.Retry)
		for {
			err := s.Bind(ep)
			if err == nil {
				return b.advertised(b.Port), b.Port, nil
			}
			if zmq.AsErrno(err) != zmq.Errno(syscall.EADDRINUSE) || time.Now().After(deadline) {
				return "", 0, bindError(ep, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	lo, hi := b.PortMin, b.PortMax
	if lo <= 0 || hi < lo {
		return "", 0, &BindError{Endpoint: host, Err: fmt.Errorf("bad port range %d-%d", lo, hi)}
	}
	span := hi - lo + 1
	first := rand.IntN(span)
	tries := min(span, 200)
	var lastErr error
	for i := 0; i < tries; i++ {
		port := lo + (first+i)%span
		ep := "tcp://" + joinHostPort(host, port)
		err := s.Bind(ep)
		if err == nil {
			return b.advertised(port), port, nil
		}
		if zmq.AsErrno(err) != zmq.Errno(syscall.EADDRINUSE) {
			return "", 0, bindError(ep, err)
		}
		lastErr = err
	}
	be := bindError("tcp://"+joinHostPort(host, lo), lastErr)
	if hi > lo {
		be.Endpoint = fmt.Sprintf("tcp://%s ports %d-%d", host, lo, hi)
	}
	be.Tries = tries
	return "", 0, be
}

// bindIPC binds an ipc endpoint in dir, named after the process and a port
// of the range (or the fixed port, so that a restarted loop binds the same
// name again). libzmq replaces a file of the same name, so the name must be
// the process's own.
func (b Bind) bindIPC(s *zmq.Socket, dir string) (string, int, error) {
	try := func(port int) (string, error) {
		ep := fmt.Sprintf("ipc://%s/relay-%d-%d.sock", strings.TrimSuffix(dir, "/"), os.Getpid(), port)
		return ep, s.Bind(ep)
	}
	if b.Port != 0 {
		ep, err := try(b.Port)
		if err != nil {
			return "", 0, bindError(ep, err)
		}
		return ep, b.Port, nil
	}
	lo, hi := b.PortMin, b.PortMax
	if lo <= 0 || hi < lo {
		return "", 0, &BindError{Endpoint: "ipc://" + dir, Err: fmt.Errorf("bad port range %d-%d", lo, hi)}
	}
	var lastErr error
	for i := 0; i < min(hi-lo+1, 200); i++ {
		port := lo + rand.IntN(hi-lo+1)
		ep, err := try(port)
		if err == nil {
			return ep, port, nil
		}
		lastErr = bindError(ep, err)
	}
	return "", 0, lastErr
}

func joinHostPort(host string, port int) string {
	for i := 0; i < len(host); i++ {
		if host[i] == ':' {
			return "[" + host + "]:" + strconv.Itoa(port)
		}
	}
	return host + ":" + strconv.Itoa(port)
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
