package sockets

import (
	"fmt"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"
)

// A monitor closed while its socket lives on (a DEALER still reconnecting
// to a server that is gone) stops monitoring first: libzmq's I/O thread
// sends each event with a blocking send, and one sent to a monitor whose
// reading end is closed would block it for good, and with it every
// connection of the process (TestAllowListRotation's calls, and new
// handshakes, timed out under load that way).
func TestMonitorCloseLeavesIOThreadRunning(t *testing.T) {
	zctx := newTestContext(t)
	d, err := zctx.z.NewSocket(zmq.DEALER)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, set := range []func() error{
		func() error { return d.SetLinger(0) },
		func() error { return d.SetReconnectIvl(time.Millisecond) },
		func() error { return d.SetReconnectIvlMax(time.Millisecond) },
	} {
		if err := set(); err != nil {
			t.Fatal(err)
		}
	}
	mon, err := newMonitor(zctx, d, lostEvents)
	if err != nil {
		t.Fatal(err)
	}
	// Nobody listens there: a connect-retried event every millisecond.
	if err := d.Connect(fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t))); err != nil {
		t.Fatal(err)
	}
	mon.close()

	// Connections made through the same I/O thread keep working while
	// the DEALER keeps retrying.
	pull, push := pipePair(t, zctx)
	for i, deadline := 0, time.Now().Add(300*time.Millisecond); i < 3 || time.Now().Before(deadline); i++ {
		if _, err := push.Send("ping", 0); err != nil {
			t.Fatal(err)
		}
		if _, err := pull.Recv(0); err != nil {
			t.Fatalf("round trip %d: %v (the I/O thread is stalled)", i, err)
		}
	}
}

// pipePair returns a PULL and a PUSH connected over tcp, the PULL waiting
// at most 2 s for each message.
func pipePair(t *testing.T, zctx *Context) (pull, push *zmq.Socket) {
	t.Helper()
	var err error
	if pull, err = zctx.z.NewSocket(zmq.PULL); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pull.Close() })
	if push, err = zctx.z.NewSocket(zmq.PUSH); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { push.Close() })
	addr := fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t))
	for _, step := range []func() error{
		func() error { return pull.SetRcvtimeo(2 * time.Second) },
		func() error { return pull.SetLinger(0) },
		func() error { return push.SetLinger(0) },
		func() error { return pull.Bind(addr) },
		func() error { return push.Connect(addr) },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	return pull, push
}
