// Package poll waits for a condition by polling it with a back-off: tests
// and tools wait for what they need, never for a fixed time. It imports
// nothing of relay, so that any package (a test helper that starts
// redis-server, an internal test of the root package) can use it.
package poll

import (
	"testing"
	"time"
)

// WaitFor calls f until it returns nil, failing the test with f's last
// error if timeout passes first.
func WaitFor(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	if err := Until(timeout, f); err != nil {
		t.Fatalf("not true after %v: %v", timeout, err)
	}
}

// Until calls f until it returns nil or timeout passes, and returns f's
// last error (nil on success). It polls with a back-off from 1 ms to 50 ms.
func Until(timeout time.Duration, f func() error) error {
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
