package sockets

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"
)

// The helpers of the loop tests: every test of a Router and a Dealers loop
// runs the same over tcp, ipc and inproc, on real libzmq (the process's
// shared context).

// transport is one of the transports the loop tests run over.
type transport struct {
	name string
	// listen returns where a router binds, at a fixed port (so that a
	// router restarted with it binds the same endpoint again), and the
	// endpoint dealers connect to; nothing is bound yet.
	listen func(t testing.TB) (Bind, string)
}

var inprocSeq atomic.Int64

// transports are tcp on 127.0.0.1, ipc in a directory of the test's, and
// inproc (the router binds an inproc name besides its tcp port; dealers
// connect to the name).
func transports() []transport {
	return []transport{
		{"tcp", func(t testing.TB) (Bind, string) {
			port := freePort(t)
			return Bind{Host: "127.0.0.1", Port: port, Retry: 2 * time.Second}, fmt.Sprintf("tcp://127.0.0.1:%d", port)
		}},
		{"ipc", func(t testing.TB) (Bind, string) {
			dir, err := os.MkdirTemp("", "relay")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(dir) })
			const port = 1
			return Bind{Host: "ipc://" + dir, Port: port}, fmt.Sprintf("ipc://%s/relay-%d-%d.sock", dir, os.Getpid(), port)
		}},
		{"inproc", func(t testing.TB) (Bind, string) {
			name := fmt.Sprintf("inproc://relay-test-%d", inprocSeq.Add(1))
			return Bind{Host: "127.0.0.1", Port: freePort(t), Retry: 2 * time.Second, Also: []string{name}}, name
		}},
	}
}

// eachTransport runs f as a subtest over every transport.
func eachTransport(t *testing.T, f func(t *testing.T, tr transport)) {
	for _, tr := range transports() {
		t.Run(tr.name, func(t *testing.T) { f(t, tr) })
	}
}

// eachReconnecting runs f over the transports on which libzmq connects a
// DEALER only to a bound peer, and connects it again to a peer bound anew:
// tcp and ipc. Over inproc, libzmq queues a DEALER's messages for a name
// not bound yet (connect before bind: IMMEDIATE has no effect), so a loop
// has nothing to hold, and a DEALER whose peer closed never connects to
// the next socket bound at that name (TestInprocNoReconnect).
func eachReconnecting(t *testing.T, f func(t *testing.T, tr transport)) {
	for _, tr := range transports()[:2] {
		t.Run(tr.name, func(t *testing.T) { f(t, tr) })
	}
}

// freePort returns a tcp port of 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startRouter starts a Router bound as b, feeding out; cfg's zero fields
// get test defaults (a loop failure fails the test). It is stopped at the
// end of the test.
func startRouter(t testing.TB, zctx *Context, b Bind, out *Outbox, cfg RouterConfig) *Router {
	t.Helper()
	cfg.Bind = b
	if cfg.Options.HWM == 0 {
		cfg.Options = DefaultOptions()
	}
	if cfg.OnFail == nil {
		cfg.OnFail = func(err error) { t.Errorf("router failed: %v", err) }
	}
	if cfg.OnRecv == nil {
		cfg.OnRecv = func(Batch) bool { return false }
	}
	r, err := StartRouter(zctx, out, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	return r
}

// startDealers starts a Dealers loop on peers, with test defaults as
// startRouter's. It is stopped at the end of the test.
func startDealers(t testing.TB, zctx *Context, peers *Peers, cfg DealersConfig) *Dealers {
	t.Helper()
	if cfg.Options.HWM == 0 {
		cfg.Options = DefaultOptions()
	}
	if cfg.OnFail == nil {
		cfg.OnFail = func(err error) { t.Errorf("dealers failed: %v", err) }
	}
	if cfg.OnRecv == nil {
		cfg.OnRecv = func(string, Batch) bool { return false }
	}
	d, err := StartDealers(zctx, peers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Stop)
	return d
}

// sink collects what a loop's OnRecv gets. Safe for concurrent use.
type sink struct {
	// pause, when set, is OnRecv's answer for the n-th call (1-based).
	pause func(n int) bool

	mu      sync.Mutex
	calls   int      // OnRecv calls
	msgs    int      // ZeroMQ messages
	payload []byte   // every payload frame, in order
	ids     [][]byte // the routing ids of a ROUTER's messages, each once, in order
}

// router is a Router's OnRecv.
func (s *sink) router(b Batch) bool { return s.take(b, true) }

// dealers is a Dealers' OnRecv.
func (s *sink) dealers(_ string, b Batch) bool { return s.take(b, false) }

func (s *sink) take(b Batch, routed bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	var fs [][]byte
	for {
		var ok bool
		if fs, ok = b.Next(fs); !ok {
			break
		}
		s.msgs++
		p := fs[len(fs)-1]
		if routed {
			p = fs[1]
			if len(s.ids) == 0 || !bytes.Equal(s.ids[len(s.ids)-1], fs[0]) {
				s.ids = append(s.ids, bytes.Clone(fs[0]))
			}
		}
		s.payload = append(s.payload, p...)
	}
	return s.pause != nil && s.pause(s.calls)
}

// counts returns the OnRecv calls, messages and payload bytes so far.
func (s *sink) counts() (calls, msgs, size int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls, s.msgs, len(s.payload)
}

// waitBytes waits until n payload bytes came.
func (s *sink) waitBytes(t *testing.T, n int) {
	t.Helper()
	waitFor(t, 10*time.Second, func() error {
		if _, _, size := s.counts(); size != n {
			return fmt.Errorf("%d payload bytes received, want %d", size, n)
		}
		return nil
	})
}

// firstID returns the routing id of the first message.
func (s *sink) firstID(t *testing.T) []byte {
	t.Helper()
	waitFor(t, 10*time.Second, func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(s.ids) == 0 {
			return fmt.Errorf("no message yet")
		}
		return nil
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ids[0]
}

// seq is record i of a test: 8 bytes, its number.
func seq(i int) []byte { return binary.BigEndian.AppendUint64(nil, uint64(i)) }

// seqs is records from..to-1, concatenated as a receiver sees them.
func seqs(from, to int) []byte {
	var b []byte
	for i := from; i < to; i++ {
		b = append(b, seq(i)...)
	}
	return b
}

// drops records what OnDrop got. Safe for concurrent use.
type drops struct {
	mu   sync.Mutex
	errs []error
	recs [][]byte
}

func (d *drops) add(m *Message, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.errs = append(d.errs, err)
	d.recs = append(d.recs, m.Rec)
}

func (d *drops) dealers(_ string, m *Message, err error) { d.add(m, err) }

// count returns how many drops were for err.
func (d *drops) count(err error) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, e := range d.errs {
		if e == err {
			n++
		}
	}
	return n
}

// total returns the drops so far.
func (d *drops) total() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.errs)
}

// dropped counts what OnDropped reports. Safe for concurrent use.
type dropped struct{ malformed, oversized atomic.Int64 }

func (d *dropped) add(malformed, oversized int) {
	d.malformed.Add(int64(malformed))
	d.oversized.Add(int64(oversized))
}

// rawSocket makes a zmq4 socket of type ty on the shared context, owned by
// the test's goroutine, closed at the end of the test (before the context).
func rawSocket(t *testing.T, zctx *Context, ty zmq.Type) *zmq.Socket {
	t.Helper()
	s, err := zctx.z.NewSocket(ty)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for _, err := range []error{s.SetLinger(0), s.SetRcvtimeo(10 * time.Second), s.SetSndtimeo(10 * time.Second)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// errIf returns an error saying what when bad.
func errIf(bad bool, what string) error {
	if bad {
		return errors.New(what)
	}
	return nil
}
