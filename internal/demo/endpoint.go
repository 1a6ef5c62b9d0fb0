// Package demo holds the example endpoint that relay's tests, `node serve`
// and `node demo` serve: a counter and a string with add, subtract, append,
// sleep and get methods.
package demo

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/relay-dev/relay"
)

// NegativeError is subtract's error when the counter would go negative.
type NegativeError struct {
	Value, By int64
}

func (e *NegativeError) Error() string {
	return fmt.Sprintf("subtracting %d from %d would go negative", e.By, e.Value)
}

// ErrorCode makes the remote error's Code "NegativeError".
func (e *NegativeError) ErrorCode() string { return "NegativeError" }

// State is what get returns.
type State struct {
	Int  int64  `msgpack:"int"`
	Str  string `msgpack:"str"`
	Host string `msgpack:"host"`
}

// Endpoint is the state of one server. Safe for concurrent use.
type Endpoint struct {
	Host string

	mu    sync.Mutex
	n     int64
	s     string
	log   []int64 // arguments of add, in the order received
	casts int
}

// Register installs the endpoint's methods on srv.
func (e *Endpoint) Register(srv *relay.Server) {
	srv.Handle("add", locked(e, e.add))
	srv.Handle("subtract", locked(e, e.subtract))
	srv.Handle("append", locked(e, e.append))
	srv.Handle("sleep", e.sleep)
	srv.Handle("get", e.get)
	srv.Handle("adds", e.adds)
	srv.Handle("echo", echo)
}

// locked is the handler that decodes the request's argument into a T and
// runs f with it, holding e.mu.
func locked[T any](e *Endpoint, f func(T, *relay.Request) (any, error)) relay.Handler {
	return func(_ context.Context, r *relay.Request) (any, error) {
		var arg T
		if err := r.Decode(&arg); err != nil {
			return nil, err
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		return f(arg, r)
	}
}

// add adds by to the counter. e.mu is held.
func (e *Endpoint) add(by int64, r *relay.Request) (any, error) {
	e.n += by
	e.log = append(e.log, by)
	if r.Cast {
		e.casts++
	}
	return e.n, nil
}

// subtract subtracts by from the counter, unless it would go negative.
// e.mu is held.
func (e *Endpoint) subtract(by int64, _ *relay.Request) (any, error) {
	if e.n-by < 0 {
		return nil, &NegativeError{Value: e.n, By: by}
	}
	e.n -= by
	return e.n, nil
}

// append appends s to the string. e.mu is held.
func (e *Endpoint) append(s string, _ *relay.Request) (any, error) {
	e.s += s
	return e.s, nil
}

// sleep sleeps for the given number of milliseconds, or until ctx ends.
func (e *Endpoint) sleep(ctx context.Context, r *relay.Request) (any, error) {
	var ms int64
	if err := r.Decode(&ms); err != nil {
		return nil, err
	}
	select {
	case <-time.After(time.Duration(ms) * time.Millisecond):
		return ms, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// echo returns its argument, whatever it is.
func echo(_ context.Context, r *relay.Request) (any, error) {
	var v any
	if err := r.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

func (e *Endpoint) get(context.Context, *relay.Request) (any, error) {
	return e.State(), nil
}

// adds returns the arguments of every add received, in order: what tests
// in other processes check exactly-once delivery with.
func (e *Endpoint) adds(context.Context, *relay.Request) (any, error) {
	return e.Adds(), nil
}

// State returns the counter and string.
func (e *Endpoint) State() State {
	e.mu.Lock()
	defer e.mu.Unlock()
	return State{Int: e.n, Str: e.s, Host: e.Host}
}

// Adds returns the arguments of every add received, in order.
func (e *Endpoint) Adds() []int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]int64(nil), e.log...)
}

// Casts returns how many adds arrived as casts.
func (e *Endpoint) Casts() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.casts
}
