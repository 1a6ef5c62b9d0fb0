package sockets

import "errors"

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
