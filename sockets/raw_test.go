package sockets

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"
	"go.uber.org/goleak"
)

// TestSendRaw sends messages of one and several frames, empty frames
// included, to a ROUTER and checks they arrive exactly as given.
func TestSendRaw(t *testing.T) {
	defer goleak.VerifyNone(t)
	zctx, err := zmq.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := zctx.Term(); err != nil {
			t.Errorf("term: %v", err)
		}
	}()
	router, err := zctx.NewSocket(zmq.ROUTER)
	if err != nil {
		t.Fatal(err)
	}
	defer router.Close()
	if err := router.SetLinger(0); err != nil {
		t.Fatal(err)
	}
	if err := router.SetRcvtimeo(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := router.Bind("tcp://127.0.0.1:*"); err != nil {
		t.Fatal(err)
	}
	ep, err := router.GetLastEndpoint()
	if err != nil {
		t.Fatal(err)
	}

	msgs := [][][]byte{
		{[]byte("junk")},
		{{}},
		{[]byte{1, 2, 3}, []byte("body"), {}, []byte("fourth")},
	}
	for _, frames := range msgs {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := SendRaw(ctx, ep, frames...)
		cancel()
		if err != nil {
			t.Fatalf("SendRaw(%q): %v", frames, err)
		}
		got, err := router.RecvMessageBytes(0)
		if err != nil {
			t.Fatalf("router recv after SendRaw(%q): %v", frames, err)
		}
		// got[0] is the routing id the ROUTER gave the DEALER.
		if len(got) != len(frames)+1 {
			t.Fatalf("received %d frames %q, want routing id + %q", len(got), got, frames)
		}
		for i, f := range frames {
			if !bytes.Equal(got[i+1], f) {
				t.Errorf("frame %d = %q, want %q", i, got[i+1], f)
			}
		}
	}
}

// TestSendRawNoPeer: with nothing listening SendRaw waits for a connection
// until ctx ends and returns ctx.Err() unchanged.
func TestSendRawNoPeer(t *testing.T) {
	defer goleak.VerifyNone(t)
	// A port bound and released: almost surely closed now.
	zctx, err := zmq.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	s, err := zctx.NewSocket(zmq.ROUTER)
	if err != nil {
		t.Fatal(err)
	}
	_ = s.SetLinger(0)
	if err := s.Bind("tcp://127.0.0.1:*"); err != nil {
		t.Fatal(err)
	}
	ep, _ := s.GetLastEndpoint()
	s.Close()
	if err := zctx.Term(); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = SendRaw(ctx, ep, []byte("x"))
	if err != context.DeadlineExceeded {
		t.Fatalf("SendRaw to %s with no peer = %v, want context.DeadlineExceeded unchanged", ep, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("SendRaw returned %v after its deadline", d)
	}

	cctx, ccancel := context.WithCancel(context.Background())
	ccancel()
	if err := SendRaw(cctx, ep, []byte("x")); !errors.Is(err, context.Canceled) {
		t.Errorf("SendRaw with a cancelled ctx = %v, want context.Canceled", err)
	}
	if err := SendRaw(context.Background(), ep); err == nil {
		t.Error("SendRaw with no frames = nil, want an error")
	}
}
