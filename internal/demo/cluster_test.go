package demo

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestRunDemo(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := RunDemo(ctx, &out); err != nil {
		t.Fatalf("RunDemo: %v\noutput so far:\n%s", err, out.String())
	}
	text := out.String()
	for _, want := range []string{
		SectionCluster, SectionRoundRobin, SectionDirected, SectionCasts,
		SectionTimeout, SectionRemoteErr, SectionNoMethod, SectionShutdown,
		"answered by alpha", "answered by beta", "answered by gamma",
		"beta's counter is now 15",
		"relay: call timed out",
		"code:    NegativeError",
		"relay: no such method",
		`text = "hello"`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", text)
	}
}

func TestRunDemoCancelled(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out bytes.Buffer
	if err := RunDemo(ctx, &out); err == nil {
		t.Fatal("RunDemo with a cancelled ctx: want an error")
	}
}
