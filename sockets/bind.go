package sockets

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	zmq "github.com/pebbe/zmq4"
)

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
