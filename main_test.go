package relay_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine outlives its tests. No
// goroutine is ignored: protoactor-go's dead-letter throttle keeps one
// goroutine per throttle interval, and supervisor.NewSystem sets that
// interval to 10ms, well within goleak's retries.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
