package e2e_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

// nodeBin is the path of the `node` binary that TestMain builds.
var nodeBin string

// TestMain builds ./cmd/node once into a temporary directory, runs the
// tests, and fails the package if any goroutine outlives them.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "relay-e2e-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: temp dir: %v\n", err)
		os.Exit(1)
	}
	nodeBin = filepath.Join(dir, "node")
	if err := buildNode(nodeBin); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		os.RemoveAll(dir)
		os.Exit(code)
	}))
}

// buildNode runs `go build -o out ./cmd/node` in the module root.
func buildNode(out string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
		if _, err := os.Stat(goBin); err != nil {
			return fmt.Errorf("go not found in PATH nor at %s: install Go", goBin)
		}
	}
	cmd := exec.Command(goBin, "build", "-o", out, "./cmd/node")
	cmd.Dir = ".." // the module root; go test runs in the package directory
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/node: %v\n%s", err, b)
	}
	return nil
}
