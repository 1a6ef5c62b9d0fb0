package e2e_test

import (
	"testing"

	"github.com/relay-dev/relay/internal/testutil"
)

// nodeBin is the path of the `node` binary that TestMain builds.
var nodeBin string

// TestMain builds ./cmd/node once into a temporary directory, runs the
// tests, and fails the package if any goroutine outlives them.
func TestMain(m *testing.M) { testutil.MainWithNode(m, "..", false, &nodeBin) }
