package scale

import (
	"testing"

	"github.com/relay-dev/relay/internal/testutil"
)

// nodeBin is the node binary that TestMain builds (without -race: the host
// and proxy processes it runs are measured, not tested for races; the
// control plane and the harness run in the test process, under -race
// when the tests do).
var nodeBin string

func TestMain(m *testing.M) { testutil.MainWithNode(m, "../..", false, &nodeBin) }
