package sockets

import (
	"fmt"
	"sync"
	"time"

	zmq "github.com/pebbe/zmq4"
)

// Context is a handle on the process's ZeroMQ context, shared by every
// node and proxy of the process: one I/O thread (and one reaper) for all of
// them, as a raw libzmq program would have, instead of two threads per
// node and one more thread wake-up on every hop between two nodes of the
// process. Every socket is made from it. The context is terminated when
// the last handle is closed.
type Context struct {
	z    *zmq.Context
	once sync.Once
}

// maxSockets is the most sockets the process's context may hold.
const maxSockets = 32768

// shared is the process's context and how many handles are open on it.
var shared struct {
	mu   sync.Mutex
	z    *zmq.Context
	refs int
	zap  *zap // the ZAP handler, started by the first AddDomain
}

// NewContext returns a new handle on the process's ZeroMQ context, making
// the context when no handle is open.
func NewContext() (*Context, error) {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.z == nil {
		z, err := zmq.NewContext()
		if err != nil {
			return nil, fmt.Errorf("sockets: new zmq context: %w", err)
		}
		// libzmq's default of 1023 sockets would be the whole process's
		// limit, every node's DEALERs included.
		if err := z.SetMaxSockets(maxSockets); err != nil {
			z.Term()
			return nil, fmt.Errorf("sockets: zmq context max sockets: %w", err)
		}
		shared.z = z
	}
	shared.refs++
	return &Context{z: shared.z}, nil
}

// Close releases the handle. The last one terminates the context: it
// waits for sockets still open, up to timeout, and reports them as an
// error rather than hanging forever. Closing a handle twice is a no-op.
func (c *Context) Close(timeout time.Duration) error {
	last := false
	var zp *zap
	c.once.Do(func() {
		shared.mu.Lock()
		defer shared.mu.Unlock()
		if shared.refs--; shared.refs == 0 {
			shared.z, last = nil, true
			zp, shared.zap = shared.zap, nil
		}
	})
	if !last {
		return nil
	}
	if zp != nil {
		zp.Stop() // its REP socket must close before Term
	}
	done := make(chan error, 1)
	go func() { done <- c.z.Term() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("sockets: terminate zmq context: %w", err)
		}
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("sockets: terminate zmq context: sockets still open after %v", timeout)
	}
}

// Options are the socket options relay sets on every data socket.
type Options struct {
	HWM              int           // send and receive high-water marks, in ZeroMQ messages (batches of up to maxBatch bytes)
	MaxMsgSize       int64         // largest accepted inbound message, all frames together, bytes
	HeartbeatIvl     time.Duration // ZMTP heartbeat interval (dead-peer detection)
	HeartbeatTimeout time.Duration // no traffic for this long closes the connection
	ReconnectIvl     time.Duration // first reconnect delay of a DEALER
	ReconnectIvlMax  time.Duration // reconnect back-off ceiling: a server back from a restart is reached within it
	// KernelBuffer sets each TCP connection's kernel send and receive
	// buffers (SO_SNDBUF, SO_RCVBUF), in bytes; 0 leaves the kernel's
	// autotuning, which lets several MiB of small records sit in the
	// kernel of both ends before a sender that outpaces its receiver
	// sees back-pressure.
	KernelBuffer int
	// Curve, when not nil, turns ZMTP CURVE on for every socket of the
	// loop (see Curve); nil is plaintext.
	Curve *Curve
}

// DefaultOptions are the options used when none are given.
func DefaultOptions() Options {
	return Options{
		HWM:              32,
		MaxMsgSize:       16 << 20,
		HeartbeatIvl:     time.Second,
		HeartbeatTimeout: 5 * time.Second,
		ReconnectIvl:     50 * time.Millisecond,
		ReconnectIvlMax:  500 * time.Millisecond,
		KernelBuffer:     256 << 10,
	}
}

// listenBacklog is the accept queue of every listening socket (ZMQ_BACKLOG;
// the kernel caps it at net.core.somaxconn). libzmq's default, 100, lets
// a thousand nodes that connect to one server at once overflow it: the
// kernel drops their handshakes, and each is retried only after a
// 1, 2, 4 s SYN back-off (node scale measured calls timing out at 1,000
// nodes, with thousands of TcpExt ListenOverflows).
const listenBacklog = 4096

// apply sets o, linger 0 and the listen backlog on s.
func (o Options) apply(s *zmq.Socket) error {
	type step struct {
		name string
		f    func() error
	}
	steps := []step{
		{"linger", func() error { return s.SetLinger(0) }},
		{"sndhwm", func() error { return s.SetSndhwm(o.HWM) }},
		{"rcvhwm", func() error { return s.SetRcvhwm(o.HWM) }},
		// libzmq checks each frame alone and drops the connection of a peer
		// that sends a larger one, uncounted: its limit is a guard at twice
		// relay's, which the receive helper checks (and counts) per message.
		{"maxmsgsize", func() error { return s.SetMaxmsgsize(2 * o.MaxMsgSize) }},
		{"heartbeat_ivl", func() error { return s.SetHeartbeatIvl(o.HeartbeatIvl) }},
		{"heartbeat_timeout", func() error { return s.SetHeartbeatTimeout(o.HeartbeatTimeout) }},
		{"heartbeat_ttl", func() error { return s.SetHeartbeatTtl(o.HeartbeatTimeout) }},
		{"reconnect_ivl", func() error { return s.SetReconnectIvl(o.ReconnectIvl) }},
		{"reconnect_ivl_max", func() error { return s.SetReconnectIvlMax(o.ReconnectIvlMax) }},
		{"tcp_keepalive", func() error { return s.SetTcpKeepalive(1) }},
		{"backlog", func() error { return s.SetBacklog(listenBacklog) }},
	}
	if o.KernelBuffer > 0 {
		steps = append(steps, step{"sndbuf", func() error { return s.SetSndbuf(o.KernelBuffer) }},
			step{"rcvbuf", func() error { return s.SetRcvbuf(o.KernelBuffer) }})
	}
	for _, st := range steps {
		if err := st.f(); err != nil {
			return fmt.Errorf("set %s: %w", st.name, err)
		}
	}
	return nil
}
