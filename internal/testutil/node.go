package testutil

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

// BuildNode builds the node command (./cmd/node of the module rooted at
// root) into out, with the race detector when race is true. A missing Go
// or libzmq fails with a hint to run make deps.
func BuildNode(root, out string, race bool) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
		if _, err := os.Stat(goBin); err != nil {
			return fmt.Errorf("go not found in PATH nor at %s: install Go (make deps checks it)", goBin)
		}
	}
	args := []string{"build", "-o", out}
	if race {
		args = append(args, "-race")
	}
	cmd := exec.Command(goBin, append(args, "./cmd/node")...)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/node in %s (needs libzmq3-dev and pkg-config: run make deps): %v\n%s", filepath.Clean(root), err, b)
	}
	return nil
}

// MainWithNode is the TestMain of a package whose tests run the node
// command: it builds ./cmd/node of the module rooted at root into a
// temporary directory (with -race when race is true), sets *bin to its
// path, runs the tests, fails the package if a goroutine outlives them,
// removes the directory and exits.
func MainWithNode(m *testing.M, root string, race bool, bin *string) {
	dir, err := os.MkdirTemp("", "relay-node-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "temp dir: %v\n", err)
		os.Exit(1)
	}
	*bin = filepath.Join(dir, "node")
	if err := BuildNode(root, *bin, race); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		os.RemoveAll(dir)
		os.Exit(code)
	}))
}

// SyncBuffer is a bytes.Buffer safe for concurrent use: a process's output
// read while it runs.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
