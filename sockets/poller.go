package sockets

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	zmq "github.com/pebbe/zmq4"
)

// poller is how a loop sleeps: its goroutine parks in Go's netpoller on an
// epoll instance that holds the ZMQ_FD of each of the loop's sockets and an
// eventfd that other goroutines write to wake it. A socket becoming
// readable wakes the loop itself, with no watcher goroutine in between, and
// a wake-up from another goroutine is one write to the eventfd, made only
// when the loop sleeps.
//
// ZMQ_FD is libzmq's "events may have changed" descriptor. It is watched
// edge-triggered: an edge comes whenever a command reaches the socket, and
// the loop then serves the socket until a receive says EAGAIN (which
// leaves libzmq's pipes asleep, so the next message brings a new edge). A
// send on the socket may process libzmq's commands too and so eat an edge:
// the send helper returns ZMQ_EVENTS, and the loop reads again when it
// says POLLIN.
//
// A poller is used by its loop's goroutine only, except kick.
type poller struct {
	ep, ev int      // the epoll instance and the eventfd
	f      *os.File // ep, registered with Go's netpoller
	rc     syscall.RawConn
	evs    [64]syscall.EpollEvent
	fds    map[int]int // the ZMQ_FDs added, by tag
	fired  []int       // indexes with an edge, filled by poll
	pollFn func(uintptr) bool

	// mu guards closed against kicks racing close (a write to an eventfd
	// number that was closed and reused would be a write to a stranger).
	mu     sync.Mutex
	closed bool
}

// evTag marks the eventfd's events; sockets are tagged with their index.
const evTag = -1

func newPoller() (*poller, error) {
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create: %w", err)
	}
	r, _, e := syscall.Syscall(syscall.SYS_EVENTFD2, 0, syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if e != 0 {
		syscall.Close(ep)
		return nil, fmt.Errorf("eventfd: %w", e)
	}
	p := &poller{ep: ep, ev: int(r), fds: make(map[int]int)}
	p.pollFn = p.poll // bound once: rc.Read takes it without an allocation per wait
	if err := syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, p.ev, &syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: evTag}); err != nil {
		p.closeFDs()
		return nil, fmt.Errorf("epoll_ctl eventfd: %w", err)
	}
	if err := syscall.SetNonblock(ep, true); err != nil {
		p.closeFDs()
		return nil, fmt.Errorf("epoll non-blocking: %w", err)
	}
	p.f = os.NewFile(uintptr(ep), "relay-epoll")
	if p.rc, err = p.f.SyscallConn(); err != nil {
		p.f.Close()
		syscall.Close(p.ev)
		return nil, fmt.Errorf("epoll raw conn: %w", err)
	}
	return p, nil
}

func (p *poller) closeFDs() {
	syscall.Close(p.ep)
	syscall.Close(p.ev)
}

// add watches s; its edges are reported with tag (≥ 0, unique among the
// sockets watched). Runs in the loop's goroutine (it reads a socket
// option).
func (p *poller) add(s *zmq.Socket, tag int) error {
	fd, err := s.GetFd()
	if err != nil {
		return fmt.Errorf("get zmq fd: %w", err)
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | -syscall.EPOLLET, Fd: int32(tag)}
	if err := syscall.EpollCtl(p.ep, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return fmt.Errorf("epoll_ctl zmq fd: %w", err)
	}
	p.fds[tag] = fd
	return nil
}

// appendTags appends the tag of every socket watched to fired.
func (p *poller) appendTags(fired []int) []int {
	for tag := range p.fds {
		fired = append(fired, tag)
	}
	return fired
}

// remove stops watching the socket of tag (before the socket is closed).
func (p *poller) remove(tag int) {
	if fd, ok := p.fds[tag]; ok {
		_ = syscall.EpollCtl(p.ep, syscall.EPOLL_CTL_DEL, fd, nil)
		delete(p.fds, tag)
	}
}

// kick wakes the loop. Safe for concurrent use; a kick after close is
// ignored.
func (p *poller) kick() {
	one := [8]byte{1}
	p.mu.Lock()
	if !p.closed {
		_, _ = syscall.Write(p.ev, one[:])
	}
	p.mu.Unlock()
}

// errTimeout is what wait's deadline returns.
var errTimeout = errors.New("timeout")

// wait sleeps until a watched socket has an edge, the loop is kicked, or
// timeout passes (0: no timeout), and appends the indexes of the sockets
// with an edge to fired. It returns at once when one is pending already.
func (p *poller) wait(timeout time.Duration, fired []int) []int {
	if timeout > 0 {
		_ = p.f.SetReadDeadline(time.Now().Add(timeout))
		defer p.f.SetReadDeadline(time.Time{})
	}
	p.fired = fired
	_ = p.rc.Read(p.pollFn)
	fired, p.fired = p.fired, nil
	return fired
}

// poll takes the events the epoll instance holds; it reports false when
// there are none (then the netpoller parks the loop until there are).
func (p *poller) poll(uintptr) bool {
	n, err := syscall.EpollWait(p.ep, p.evs[:], 0)
	if err != nil || n <= 0 {
		return false
	}
	for _, ev := range p.evs[:n] {
		if ev.Fd == evTag {
			var b [8]byte
			_, _ = syscall.Read(p.ev, b[:])
			continue
		}
		p.fired = append(p.fired, int(ev.Fd))
	}
	return true
}

// close releases the poller. Runs in the loop's goroutine, at its end.
func (p *poller) close() {
	p.mu.Lock()
	p.closed = true
	p.f.Close()
	syscall.Close(p.ev)
	p.mu.Unlock()
}
