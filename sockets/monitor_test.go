package sockets

import (
	"bytes"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"
)

// Closing a monitor stops the monitoring before it closes the reading
// end. libzmq's I/O thread writes a socket's events to the monitor's PAIR
// with a blocking send, and once the PAIR has seen its reader go, a send
// waits for a reader that never comes: the I/O thread, which every socket
// of the process shares, would stop, and with it every connection,
// handshake and ZAP request of the process. (Seen as TestAllowListRotation's
// calls timing out: a DEALER refused at its handshake was closed, monitor
// first, and its connection's later events blocked the I/O thread.)
func TestMonitorCloseKeepsIOThread(t *testing.T) {
	zctx := newTestContext(t)
	connected := func() (router, dealer *zmq.Socket) {
		router, dealer = rawSocket(t, zctx, zmq.ROUTER), rawSocket(t, zctx, zmq.DEALER)
		if err := router.Bind("tcp://127.0.0.1:*"); err != nil {
			t.Fatal(err)
		}
		ep, err := router.GetLastEndpoint()
		if err != nil {
			t.Fatal(err)
		}
		if err := dealer.Connect(ep); err != nil {
			t.Fatal(err)
		}
		return router, dealer
	}
	roundTrip := func(router, dealer *zmq.Socket) {
		t.Helper()
		for _, err := range []error{router.SetRcvtimeo(2 * time.Second), dealer.SetSndtimeo(2 * time.Second)} {
			if err != nil {
				t.Fatal(err)
			}
		}
		if _, err := dealer.SendBytes([]byte("hello"), 0); err != nil {
			t.Fatal(err)
		}
		if got, err := router.RecvMessageBytes(0); err != nil || !bytes.Equal(got[1], []byte("hello")) {
			t.Fatalf("the router got %q, %v: the I/O thread is stuck", got, err)
		}
	}
	router, dealer := connected()
	// Retry the connection every millisecond once it is gone: events
	// (DISCONNECTED, then CONNECT_RETRIED) come one after the other.
	if err := dealer.SetReconnectIvl(time.Millisecond); err != nil {
		t.Fatal(err)
	}
	roundTrip(router, dealer)
	mon, err := newMonitor(zctx, dealer, lostEvents)
	if err != nil {
		t.Fatal(err)
	}
	mon.close()
	router.Close() // the dealer's connection drops, and cannot be made again

	router2, dealer2 := connected()
	for deadline := time.Now().Add(300 * time.Millisecond); time.Now().Before(deadline); {
		roundTrip(router2, dealer2) // the I/O thread still serves the process
	}
}
