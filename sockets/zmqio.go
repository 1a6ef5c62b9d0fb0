package sockets

// Batched I/O on a ZeroMQ socket: one cgo call sends every message of a
// buffer, or receives every message the socket holds, instead of zmq4's
// several cgo calls per frame (zmq_msg_init, recv, data, size, close and
// getsockopt(RCVMORE) for each one).
//
// Messages cross the cgo boundary packed in a Go byte slice ("packed
// form"), which holds no Go pointers, so C may read and write it during
// the call:
//
//	message = nframes u8, then per frame: len u32 (host order), bytes
//
// A socket is still used by one goroutine only: these functions are called
// from the loop that owns it.

/*
#cgo !windows pkg-config: libzmq
#include <zmq.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define RELAY_MAX_FRAMES 4

// relay_rx is a socket's receive state: a message received from libzmq
// that did not fit in the caller's buffer yet.
typedef struct {
	zmq_msg_t parts[RELAY_MAX_FRAMES];
	int n;
	size_t size;
	// Results of the last call, here rather than in Go variables passed by
	// address (which would escape to the heap on every call).
	size_t used, need, done;
	int status, dropped, oversized, events;
	// The largest message taken, all frames together (0: no limit):
	// bigger ones are read, closed and counted, never copied.
	size_t max_total;
	// want_uid asks for each message's User-Id (the client's CURVE key, as
	// the ZAP handler named it) as one more frame after the message's own;
	// uid is the current message's, valid while its parts are.
	int want_uid;
	const char *uid;
	size_t uid_len;
} relay_rx;

static relay_rx *relay_rx_new(void) { return calloc(1, sizeof(relay_rx)); }

static void relay_rx_reset(relay_rx *r) {
	for (int i = 0; i < r->n; i++) zmq_msg_close(&r->parts[i]);
	r->n = 0;
	r->size = 0;
	r->uid = NULL;
	r->uid_len = 0;
}

static void relay_rx_free(relay_rx *r) {
	relay_rx_reset(r);
	free(r);
}

// relay_take receives one whole message into r. It returns 0, or the errno
// of the failure (EAGAIN: nothing to read). A message of more than
// RELAY_MAX_FRAMES frames is read whole and dropped (r->dropped counts
// it), and so is one larger than r->max_total (r->oversized).
static int relay_take(void *s, relay_rx *r) {
	for (;;) {
		int n = 0, over = 0;
		size_t size = 1, total = 0;
		for (;;) {
			zmq_msg_t tmp, *m = n < RELAY_MAX_FRAMES ? &r->parts[n] : &tmp;
			zmq_msg_init(m);
			int rc;
			do {
				rc = zmq_msg_recv(m, s, ZMQ_DONTWAIT);
			} while (rc < 0 && errno == EINTR);
			if (rc < 0) {
				int e = errno;
				zmq_msg_close(m);
				r->n = n;
				relay_rx_reset(r);
				return e;
			}
			int more = zmq_msg_more(m);
			total += zmq_msg_size(m);
			if (n < RELAY_MAX_FRAMES) {
				size += 4 + zmq_msg_size(m);
				n++;
			} else {
				zmq_msg_close(m);
				over = 1;
			}
			if (!more) break;
		}
		r->n = n;
		r->size = size;
		int big = r->max_total > 0 && total > r->max_total;
		if (!over && !big) {
			if (r->want_uid) {
				const char *uid = zmq_msg_gets(&r->parts[n - 1], "User-Id");
				r->uid = uid;
				r->uid_len = uid ? strlen(uid) : 0;
				r->size += 4 + r->uid_len;
			}
			return 0;
		}
		relay_rx_reset(r);
		if (over) r->dropped++;
		else r->oversized++;
	}
}

// relay_recv copies whole messages into buf (packed form) until the socket
// has none (*status 0), buf is full or max messages are copied (*status
// 1), or receiving fails (*status = errno). It returns the number of
// messages copied and their bytes in *used. When not even the first
// message fits, *need is the size it needs; it stays in r for the next
// call.
static int relay_recv(void *s, relay_rx *r, char *buf, size_t cap, int max) {
	size_t off = 0;
	int count = 0;
	int *status = &r->status;
	size_t *used = &r->used, *need = &r->need;
	*status = 0;
	*need = 0;
	r->dropped = 0;
	r->oversized = 0;
	while (count < max) {
		if (r->n == 0) {
			int e = relay_take(s, r);
			if (e == EAGAIN) break;
			if (e != 0) {
				*status = e;
				break;
			}
		}
		if (off + r->size > cap) {
			if (count == 0) *need = r->size;
			*status = 1;
			break;
		}
		buf[off++] = (char)(r->n + (r->want_uid ? 1 : 0));
		for (int i = 0; i < r->n; i++) {
			uint32_t len = (uint32_t)zmq_msg_size(&r->parts[i]);
			memcpy(buf + off, &len, 4);
			off += 4;
			if (len > 0) memcpy(buf + off, zmq_msg_data(&r->parts[i]), len);
			off += len;
		}
		if (r->want_uid) {
			uint32_t len = (uint32_t)r->uid_len;
			memcpy(buf + off, &len, 4);
			off += 4;
			if (len > 0) memcpy(buf + off, r->uid, len);
			off += len;
		}
		relay_rx_reset(r);
		count++;
	}
	if (count == max) *status = 1;
	*used = off;
	return count;
}

// relay_send sends the messages packed in buf[0:len] without blocking,
// until all are sent or one fails. It returns 0 or the errno of the
// message that failed (EAGAIN: it would block); *done is the number of
// bytes of whole messages sent before it. *events is ZMQ_EVENTS after the
// sends: a send may have processed the socket's commands and so consumed
// the ZMQ_FD edge of a message that arrived meanwhile.
static int relay_send(void *s, relay_rx *r, const char *buf, size_t len) {
	size_t *done = &r->done;
	int *events = &r->events;
	size_t off = 0;
	int err = 0;
	while (off < len) {
		int n = (unsigned char)buf[off];
		size_t p = off + 1;
		for (int i = 0; i < n; i++) {
			uint32_t fl;
			memcpy(&fl, buf + p, 4);
			p += 4;
			int flags = ZMQ_DONTWAIT | (i < n - 1 ? ZMQ_SNDMORE : 0);
			int rc;
			do {
				rc = zmq_send(s, buf + p, fl, flags);
			} while (rc < 0 && errno == EINTR);
			if (rc < 0) {
				err = errno;
				if (i > 0 && err == EAGAIN) err = EIO; // never for ROUTER/DEALER: multipart is atomic
				goto out;
			}
			p += fl;
		}
		off = p;
	}
out:
	*done = off;
	size_t sz = sizeof(int);
	*events = 0;
	zmq_getsockopt(s, ZMQ_EVENTS, events, &sz);
	return err;
}

static int relay_events(void *s) {
	int ev = 0;
	size_t sz = sizeof(int);
	if (zmq_getsockopt(s, ZMQ_EVENTS, &ev, &sz) != 0) return -errno;
	return ev;
}

static int relay_type(void *s) {
	int t = -1;
	size_t sz = sizeof(int);
	if (zmq_getsockopt(s, ZMQ_TYPE, &t, &sz) != 0) return -1;
	return t;
}
*/
import "C"

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"syscall"
	"unsafe"

	zmq "github.com/pebbe/zmq4"
)

// maxFrames is the most frames a received message may have; a message with
// more is dropped whole (and counted) by the receive helper.
const maxFrames = C.RELAY_MAX_FRAMES

// errTooManyFrames is reported for messages of more than maxFrames frames.
var errTooManyFrames = errors.New("sockets: message of too many frames dropped")

// batchSocket is the libzmq socket behind a zmq4 socket, with its receive
// state. Used by one goroutine only.
type batchSocket struct {
	z     *zmq.Socket
	ptr   unsafe.Pointer
	rx    *C.relay_rx
	fault *atomic.Pointer[error] // its loop's injected fault, or nil
}

// newBatchSocket wraps s for batched I/O. It reads zmq4's socket handle, the
// first field of zmq.Socket, and checks it by asking libzmq the socket's
// type, so that a zmq4 whose layout changed is refused rather than used.
func newBatchSocket(s *zmq.Socket) (*batchSocket, error) {
	ptr := *(*unsafe.Pointer)(unsafe.Pointer(s))
	want, err := s.GetType()
	if err != nil {
		return nil, fmt.Errorf("get socket type: %w", err)
	}
	if ptr == nil || int(C.relay_type(ptr)) != int(want) {
		return nil, errors.New("zmq4's Socket layout is not the one relay was built for (pebbe/zmq4 v1.4.0)")
	}
	return &batchSocket{z: s, ptr: ptr, rx: C.relay_rx_new()}, nil
}

// limitTotal makes the socket drop (and count) messages larger than max
// bytes, all frames together, before they are copied. 0: no limit.
func (r *batchSocket) limitTotal(limit int64) { r.rx.max_total = C.size_t(max(limit, 0)) }

// withUserID makes every received message end with one more frame: the
// User-Id of the connection it came on (the client's CURVE public key in
// Z85, as the ZAP handler named it), empty when there is none.
func (r *batchSocket) withUserID() { r.rx.want_uid = 1 }

// close0 frees the receive state and closes the socket (with the linger
// set on it).
func (r *batchSocket) close0() {
	if r.rx != nil {
		C.relay_rx_free(r.rx)
		r.rx = nil
	}
	r.z.Close()
}

// recvResult is what one recv call produced.
type recvResult struct {
	n         int   // messages in buf[:used]
	used      int   // bytes
	more      bool  // stopped before the socket was empty (buffer or max reached)
	need      int   // when n == 0 and more: the size the next message needs
	dropped   int   // messages dropped for too many frames
	oversized int   // messages dropped for their size
	err       error // a receive error other than EAGAIN
}

// recv receives whole messages into buf in packed form, at most max.
func (r *batchSocket) recv(buf []byte, max int) recvResult {
	if r.fault != nil {
		if err := r.fault.Load(); err != nil {
			return recvResult{err: *err}
		}
	}
	if len(buf) == 0 {
		return recvResult{more: true, need: 1}
	}
	n := C.relay_recv(r.ptr, r.rx, (*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)), C.int(max))
	res := recvResult{n: int(n), used: int(r.rx.used), need: int(r.rx.need),
		dropped: int(r.rx.dropped), oversized: int(r.rx.oversized)}
	switch status := r.rx.status; {
	case status == 1:
		res.more = true
	case status != 0:
		res.err = zmq.Errno(syscall.Errno(status))
	}
	return res
}

// send sends the messages packed in buf without blocking. It returns the
// bytes of whole messages sent, the error of the message it stopped at
// (nil: all sent; zmq.Errno(EAGAIN): it would block), and whether the
// socket has a message to read.
func (r *batchSocket) send(buf []byte) (done int, readable bool, err error) {
	if len(buf) == 0 {
		return 0, r.readable(), nil
	}
	e := C.relay_send(r.ptr, r.rx, (*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)))
	if e != 0 {
		err = zmq.Errno(syscall.Errno(e))
	}
	return int(r.rx.done), r.rx.events&C.ZMQ_POLLIN != 0, err
}

// readable reports whether the socket has a message to read (ZMQ_EVENTS).
func (r *batchSocket) readable() bool {
	ev := C.relay_events(r.ptr)
	return ev > 0 && ev&C.ZMQ_POLLIN != 0
}

// appendMessage appends one message of the given frames in packed form.
func appendMessage(b []byte, frames ...[]byte) []byte {
	b = append(b, byte(len(frames)))
	for _, f := range frames {
		b = binary.NativeEndian.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	return b
}

// packed iterates over the messages of buf in packed form.
type packed struct {
	buf []byte
	off int
}

// next returns the frames of the next message (aliasing buf) in frames[:0],
// or false at the end.
func (p *packed) next(frames [][]byte) ([][]byte, bool) {
	if p.off >= len(p.buf) {
		return nil, false
	}
	n := int(p.buf[p.off])
	p.off++
	frames = frames[:0]
	for i := 0; i < n; i++ {
		l := int(binary.NativeEndian.Uint32(p.buf[p.off:]))
		p.off += 4
		frames = append(frames, p.buf[p.off:p.off+l:p.off+l])
		p.off += l
	}
	return frames, true
}
