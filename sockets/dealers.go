package sockets

import (
	"fmt"
	"time"

	zmq "github.com/pebbe/zmq4"
)

// DealersConfig configures a Dealers loop.
type DealersConfig struct {
	// Identity is the routing id every DEALER presents to servers: the
	// caller's reply identity. It must not start with a zero byte.
	Identity   []byte
	Options    Options
	BacklogMax int // per peer
	// Live reports whether a queued message is still wanted (e.g. its call
	// has not timed out). Messages that are not are skipped. May be nil.
	Live func(ref any) bool
	// OnRecv gets each inbound message from the peer at addr. It runs in the
	// loop's goroutine and must not block.
	OnRecv func(addr string, frames [][]byte)
	// OnDrop gets each message the loop gives up on, with the reason.
	OnDrop func(m *Message, err error)
	// OnFail gets the error that ended the loop after it was ready.
	OnFail func(err error)
}

// Dealers is the loop that owns the DEALER sockets towards servers, one per
// server endpoint, connected on first use.
type Dealers struct {
	*handle
	cfg DealersConfig
	out *Outbox
}

// dealer is one DEALER socket and what it could not send yet.
type dealer struct {
	addr    string
	s       *zmq.Socket
	w       *fdWatch
	more    bool // read again before waiting: a full batch was read, or we sent
	pending backlog
}

// StartDealers starts a Dealers loop in a new goroutine, sending what out
// holds.
func StartDealers(zctx *Context, out *Outbox, cfg DealersConfig) (*Dealers, error) {
	if cfg.BacklogMax <= 0 {
		cfg.BacklogMax = 10_000
	}
	if len(cfg.Identity) == 0 || cfg.Identity[0] == 0 {
		return nil, fmt.Errorf("sockets: dealers: identity must be non-empty and not start with a zero byte")
	}
	d := &Dealers{cfg: cfg, out: out}
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

// Runs in the loop's goroutine; owns every DEALER it makes.
func (d *Dealers) run(zctx *Context, h *handle) error {
	quit := h.quit
	readyCh := make(chan struct{}, 1)
	byAddr := make(map[string]*dealer)
	var all []*dealer
	waiting := 0 // dealers with a non-empty backlog
	defer func() {
		for _, dl := range all {
			dl.pending.requeue(d.out, d.drop)
			dl.w.close()
			h.closeSocket(dl.s)
		}
	}()

	connect := func(addr string) (*dealer, error) {
		s, err := zctx.z.NewSocket(zmq.DEALER)
		if err != nil {
			return nil, fmt.Errorf("sockets: new dealer: %w", err)
		}
		err = d.cfg.Options.apply(s)
		if err == nil {
			err = s.SetIdentity(string(d.cfg.Identity))
		}
		if err == nil {
			err = s.SetImmediate(true)
		}
		if err == nil {
			err = s.Connect(addr)
		}
		var w *fdWatch
		if err == nil {
			w, err = watch(s, readyCh)
		}
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("sockets: dealer to %s: %w", addr, err)
		}
		dl := &dealer{addr: addr, s: s, w: w, more: true, pending: backlog{max: d.cfg.BacklogMax}}
		byAddr[addr] = dl
		all = append(all, dl)
		return dl, nil
	}
	try := func(dl *dealer) func(*Message) (bool, error) {
		return func(m *Message) (bool, error) {
			// A send may process the socket's pending commands and so eat
			// the ZMQ_FD edge of a reply that arrived: read again afterwards.
			dl.more = true
			err := send(dl.s, m.Header, m.Body)
			switch {
			case err == nil:
				return false, nil
			case isAgain(err):
				return true, nil
			default:
				return false, fmt.Errorf("sockets: send to %s: %w", dl.addr, err)
			}
		}
	}
	count := func(dl *dealer, was bool) {
		now := len(dl.pending.msgs) > 0
		if now && !was {
			waiting++
		} else if was && !now {
			waiting--
		}
	}

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	retry := false // the backlog tick passed: retry every held send
	for !quitting(quit) {
		busy := false
		for _, dl := range all {
			edge := dl.w.signalled()
			if edge || dl.more {
				n, err := d.recv(dl)
				if err != nil {
					return err
				}
				dl.more = n == recvBatch
				if n > 0 || dl.more {
					busy = true
				}
			}
			if (edge || retry) && len(dl.pending.msgs) > 0 {
				if dl.pending.flush(try(dl), d.drop) > 0 {
					busy = true
				}
				count(dl, true)
			}
		}
		retry = false
		d.out.rearm()
		for {
			m, ok := d.out.next()
			if !ok {
				break
			}
			busy = true
			if d.cfg.Live != nil && !d.cfg.Live(m.Ref) {
				continue
			}
			dl := byAddr[m.Addr]
			if dl == nil {
				var err error
				if dl, err = connect(m.Addr); err != nil {
					d.drop(&m, err)
					continue
				}
			}
			was := len(dl.pending.msgs) > 0
			if !was {
				retry, err := try(dl)(&m)
				if !retry {
					if err != nil {
						d.drop(&m, err)
					}
					continue
				}
			}
			if err := dl.pending.add(m); err != nil {
				d.drop(&m, err)
			}
			count(dl, was)
		}
		if waiting > 0 {
			now := time.Now().UnixNano()
			for _, dl := range all {
				if len(dl.pending.msgs) > 0 {
					dl.pending.expire(now, ErrExpired, d.drop)
					count(dl, true)
				}
			}
		}
		held := 0
		for _, dl := range all {
			held += len(dl.pending.msgs)
		}
		d.out.settle(held)
		if !busy {
			retry = wait(readyCh, d.out, quit, timer, waiting > 0) && waiting > 0
		}
	}
	return nil
}

// recv reads up to recvBatch messages from dl and says how many. Runs in
// the loop's goroutine.
func (d *Dealers) recv(dl *dealer) (int, error) {
	for i := 0; i < recvBatch; i++ {
		frames, err := dl.s.RecvMessageBytes(zmq.DONTWAIT)
		if err != nil {
			if isAgain(err) {
				return i, nil
			}
			return i, fmt.Errorf("sockets: recv from %s: %w", dl.addr, err)
		}
		d.cfg.OnRecv(dl.addr, frames)
	}
	return recvBatch, nil
}

func (d *Dealers) drop(m *Message, err error) {
	if d.cfg.OnDrop != nil {
		d.cfg.OnDrop(m, err)
	}
}
