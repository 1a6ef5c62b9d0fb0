package sockets

import (
	"errors"
	"fmt"
	"syscall"

	zmq "github.com/pebbe/zmq4"
)

var (
	// ErrBackPressure means a send backlog reached its bound.
	ErrBackPressure = errors.New("sockets: send backlog full (back-pressure)")
	// ErrExpired means a message's deadline passed before it could be sent.
	ErrExpired = errors.New("sockets: deadline passed before the message could be sent")
	// ErrUnreachable means the peer was not connected until the message's deadline.
	ErrUnreachable = errors.New("sockets: peer unreachable")
	// ErrStopped means the loop stopped with the message unsent and it could not be requeued.
	ErrStopped = errors.New("sockets: socket loop stopped")
	// ErrOutboxFull is returned by Outbox.TryPush when the queue is full.
	ErrOutboxFull = errors.New("sockets: outbox full (back-pressure)")
)

// BindError is a socket that could not be bound: the endpoint (or the
// address and the port range) tried, and why. Err is a syscall.Errno when
// libzmq gave one (EADDRINUSE: the port is taken; EADDRNOTAVAIL: not an
// address of this host; ENODEV: no interface of that name; EACCES: a
// privileged port), so errors.Is(err, syscall.EADDRINUSE) holds.
type BindError struct {
	Endpoint string // "tcp://127.0.0.1:7001", or "tcp://127.0.0.1 ports 7000-7099"
	Tries    int    // ports tried in a range; 0 for one endpoint
	Err      error
}

// Error says what could not be bound and why.
func (e *BindError) Error() string {
	if e.Tries > 0 {
		return fmt.Sprintf("sockets: bind %s: %v (%d ports tried)", e.Endpoint, e.Err, e.Tries)
	}
	return fmt.Sprintf("sockets: bind %s: %v", e.Endpoint, e.Err)
}

// Unwrap returns why.
func (e *BindError) Unwrap() error { return e.Err }

// bindError is the BindError of a failed bind of endpoint ep, with
// libzmq's error as a syscall.Errno when it has one.
func bindError(ep string, err error) *BindError {
	// libzmq's own codes start at ZMQ_HAUSNUMERO; below it, the system's.
	if errno := zmq.AsErrno(err); errno != 0 && errno < 156384712 {
		err = syscall.Errno(errno)
	}
	return &BindError{Endpoint: ep, Err: err}
}
