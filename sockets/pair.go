package sockets

import (
	"fmt"

	zmq "github.com/pebbe/zmq4"
)

// The two bound sockets of a proxy loop (Proxy, RouterProxy): a frontend
// and a backend, each bound where its Bind says.

// Tags of a proxy loop's sockets in its poller, and the first of their
// monitors'.
const (
	tagFront, tagBack = 0, 1
	tagPairMonitors   = 2
)

// pairEnds are where a proxy loop's two sockets are bound. Set by the
// loop before it is ready; read-only after.
type pairEnds struct {
	front, back         string
	frontPort, backPort int
}

// Endpoints returns the bound frontend and backend endpoints.
func (e *pairEnds) Endpoints() (front, back string) { return e.front, e.back }

// Ports returns the bound frontend and backend ports, for a new loop to
// bind the same ones.
func (e *pairEnds) Ports() (front, back int) { return e.frontPort, e.backPort }

// open makes the frontend (of type ft) and backend (bt) sockets of the
// proxy loop name, monitors their handshakes (onRefused gets the refused
// ones), and binds them as front and back say, recording where in e. The
// sockets are closed when the loop's body returns. A bind error is
// returned as it is (a *BindError). Runs in the loop's goroutine.
func (e *pairEnds) open(zctx *Context, h *handle, name string, ft, bt zmq.Type, o Options, front, back Bind, onRefused func(string)) (f, b *batchSocket, mons *monitors, err error) {
	wrap := func(err error) (*batchSocket, *batchSocket, *monitors, error) {
		return nil, nil, nil, fmt.Errorf("sockets: %s: %w", name, err)
	}
	if f, err = h.socket(zctx, ft, o, tagFront); err != nil {
		return wrap(err)
	}
	if b, err = h.socket(zctx, bt, o, tagBack); err != nil {
		return wrap(err)
	}
	if mons, err = watch(zctx, h, tagPairMonitors, refusals(onRefused), f, b); err != nil {
		return wrap(err)
	}
	if e.front, e.frontPort, err = front.bind(f.z); err != nil {
		return nil, nil, nil, err
	}
	if e.back, e.backPort, err = back.bind(b.z); err != nil {
		return nil, nil, nil, err
	}
	return f, b, mons, nil
}
