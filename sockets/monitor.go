package sockets

import (
	"fmt"
	"sync/atomic"

	zmq "github.com/pebbe/zmq4"
)

// monitorEvents are the socket events a loop watches: how each ZMTP
// handshake ends. A handshake refused by CURVE or ZAP is otherwise silent:
// the peer just never connects (libzmq does not even reconnect).
const monitorEvents = zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL |
	zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_SUCCEEDED

// monitorSeq numbers the monitors' inproc endpoints within the process.
var monitorSeq atomic.Uint64

// monitor is the receiving end (a PAIR) of a socket's event monitor. It is
// owned by the loop that owns the socket; the loop adds it to its poller
// and then reads it once (drain): like any ZeroMQ socket's ZMQ_FD, it
// signals an edge only after a read found it empty.
type monitor struct {
	s    *zmq.Socket // the socket monitored
	pair *zmq.Socket
	// plain: the socket has no security mechanism (NULL), so a handshake
	// that ends without detail (the connection reset or timed out, errno
	// EAGAIN, EPIPE, ECONNRESET) refused nothing: libzmq reconnects.
	plain bool
}

// lostEvents are the events of a connecting socket whose peer is gone:
// the connection was lost, or could not be made (libzmq retries it).
const lostEvents = zmq.EVENT_DISCONNECTED | zmq.EVENT_CONNECT_RETRIED

// newMonitor starts monitoring s for the handshake events and extra ones
// (lostEvents, or 0). Runs in the loop's goroutine.
func newMonitor(zctx *Context, s *zmq.Socket, extra zmq.Event) (*monitor, error) {
	addr := fmt.Sprintf("inproc://relay-monitor-%d", monitorSeq.Add(1))
	if err := s.Monitor(addr, monitorEvents|extra); err != nil {
		return nil, fmt.Errorf("monitor: %w", err)
	}
	m := &monitor{s: s}
	fail := func(err error) (*monitor, error) {
		m.close()
		return nil, fmt.Errorf("monitor: %w", err)
	}
	pair, err := zctx.z.NewSocket(zmq.PAIR)
	if err != nil {
		return fail(err)
	}
	m.pair = pair
	// No high-water mark on the events' pipe: libzmq's I/O thread sends
	// each event with a blocking send, so a full pipe would stall every
	// connection of the process until the loop reads.
	if err := pair.SetLinger(0); err != nil {
		return fail(err)
	}
	if err := pair.SetRcvhwm(0); err != nil {
		return fail(err)
	}
	if err := pair.Connect(addr); err != nil {
		return fail(err)
	}
	mech, err := s.GetMechanism()
	if err != nil {
		return fail(err)
	}
	m.plain = mech == zmq.NULL
	return m, nil
}

// drain hands every queued event to f: a failed handshake with its reason,
// or a successful one (failed false), and the endpoint it concerns (for a
// connecting socket, the one it connected to). Runs in the loop's
// goroutine.
func (m *monitor) drain(server bool, f func(failed bool, reason, endpoint string)) error {
	return m.drainLost(server, f, nil)
}

// drainLost is drain that also hands lost the endpoint of each connection
// lost (disconnected true) or not made (lostEvents, when monitored).
func (m *monitor) drainLost(server bool, f func(failed bool, reason, endpoint string), lost func(endpoint string, disconnected bool)) error {
	for {
		ev, ep, value, err := m.pair.RecvEvent(zmq.DONTWAIT)
		if isAgain(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("monitor: %w", err)
		}
		switch ev {
		case zmq.EVENT_HANDSHAKE_SUCCEEDED:
			f(false, "", ep)
		case zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL:
			// With CURVE, a server that cannot prove its key drops the
			// connection: a refusal. Without, a dropped handshake is
			// the network's (node scale saw resets and timeouts under a
			// thousand nodes' connections), and libzmq connects again.
			if !m.plain {
				f(true, handshakeReason(ev, value, server), ep)
			}
		case zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL, zmq.EVENT_HANDSHAKE_FAILED_AUTH:
			f(true, handshakeReason(ev, value, server), ep)
		case zmq.EVENT_DISCONNECTED, zmq.EVENT_CONNECT_RETRIED:
			if lost != nil {
				lost(ep, ev == zmq.EVENT_DISCONNECTED)
			}
		}
	}
}

// close stops monitoring the socket, then closes the monitor's end. Runs
// in the loop's goroutine, before the socket is closed.
//
// The order matters: libzmq's I/O thread writes the events of a socket
// (and of its connections, which outlive a close for a while) to the
// monitor's PAIR with a blocking send, and a PAIR whose peer is gone never
// takes one. Were the reading end closed first, the next event (a
// DEALER's connection dropping after a refused handshake, say) would
// block the I/O thread, which the process's context shares: every
// handshake, ZAP request and message of the process would stop.
func (m *monitor) close() {
	if m == nil {
		return
	}
	_ = m.s.Monitor("", 0) // stop: libzmq closes its end
	if m.pair != nil {
		m.pair.Close()
	}
}

// handshake is how one ZMTP handshake ended, as a monitor saw it.
type handshake struct {
	server   bool   // seen by a server socket (ROUTER, XPUB)
	failed   bool   // refused; else it succeeded
	reason   string // why it failed
	endpoint string // for a client socket, the endpoint it connected to
}

// monitors are the monitors of a loop's sockets, by their poller index,
// and what the loop does with each handshake that ended. Loop only.
type monitors struct {
	byIndex map[int]*watchedSocket
	f       func(handshake)
}

type watchedSocket struct {
	m      *monitor
	server bool
}

// watch starts monitoring socks and adds the monitors to the loop's
// poller, tagged firstTag, firstTag+1, ... (tags the loop does not use
// otherwise); f gets each handshake that ended (see handle). The monitors
// are closed when the loop's body returns. Runs in the loop's goroutine.
func watch(zctx *Context, h *handle, firstTag int, f func(handshake), socks ...*batchSocket) (*monitors, error) {
	ms := &monitors{byIndex: map[int]*watchedSocket{}, f: f}
	h.atExit = append(h.atExit, ms.close)
	for n, s := range socks {
		i := firstTag + n
		t, err := s.z.GetType()
		if err != nil {
			return nil, err
		}
		m, err := newMonitor(zctx, s.z, 0)
		if err != nil {
			return nil, err
		}
		if err := h.p.add(m.pair, i); err != nil {
			m.close()
			return nil, err
		}
		ms.byIndex[i] = &watchedSocket{m: m, server: isServer(t)}
		// Read it once: its edge comes only after a read found it empty.
		if _, err := ms.handle(i); err != nil {
			return nil, err
		}
	}
	return ms, nil
}

// refusals is a monitors' f that hands onRefused (when set) the reason of
// each handshake refused.
func refusals(onRefused func(reason string)) func(handshake) {
	return func(hs handshake) {
		if hs.failed && onRefused != nil {
			onRefused(hs.reason)
		}
	}
}

// handle drains the monitor at poller index i, if i is one, calling f for
// each handshake that ended; it reports whether i was a monitor.
func (ms *monitors) handle(i int) (bool, error) {
	w, ok := ms.byIndex[i]
	if !ok {
		return false, nil
	}
	return true, w.m.drain(w.server, func(failed bool, reason, ep string) {
		ms.f(handshake{server: w.server, failed: failed, reason: reason, endpoint: ep})
	})
}

// close closes every monitor.
func (ms *monitors) close() {
	for _, w := range ms.byIndex {
		w.m.close()
	}
}
