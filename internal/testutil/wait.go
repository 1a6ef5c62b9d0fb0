// Package testutil holds what relay's test packages share.
package testutil

import (
	"testing"
	"time"
)

// WaitFor calls f until it returns nil, failing the test with f's last
// error if timeout passes first. It polls with a back-off from 1 ms to
// 50 ms: tests wait for what they need, never for a fixed time.
func WaitFor(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	if err := Poll(timeout, f); err != nil {
		t.Fatalf("not true after %v: %v", timeout, err)
	}
}

// Poll calls f until it returns nil or timeout passes, and returns f's last
// error (nil on success).
func Poll(timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	wait := time.Millisecond
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(wait)
		wait = min(2*wait, 50*time.Millisecond)
	}
}
