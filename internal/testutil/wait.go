// Package testutil holds what relay's test packages share.
package testutil

import (
	"testing"
	"time"

	"github.com/relay-dev/relay/internal/poll"
)

// WaitFor calls f until it returns nil, failing the test with f's last
// error if timeout passes first (poll.WaitFor).
func WaitFor(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	poll.WaitFor(t, timeout, f)
}

// Poll calls f until it returns nil or timeout passes, and returns f's last
// error (poll.Until).
func Poll(timeout time.Duration, f func() error) error { return poll.Until(timeout, f) }
