package chaos

import (
	"testing"

	"github.com/relay-dev/relay/internal/testutil"
)

// nodeBin is the node binary that TestMain builds (without -race: the
// processes it runs are not under test for races, the harness is).
var nodeBin string

func TestMain(m *testing.M) { testutil.MainWithNode(m, "../..", false, &nodeBin) }
