package main

import (
	"os"
	"testing"
)

// node chaos checks its flags before it starts anything, and says how to
// get redis-server when it is missing. (A run itself is tested in
// internal/chaos.)
func TestChaosErrors(t *testing.T) {
	expect(t, runNode(t, "chaos", "--mode", "mesh"), 2, `--mode: "mesh" is not one of [direct router pubsub]`)
	expect(t, runNode(t, "chaos", "--duration", "1s"), 2, "--duration: want at least 5s")
	expect(t, runNode(t, "chaos", "--servers", "1"), 2, "--servers: want 2 to 16")
	expect(t, runNode(t, "chaos", "extra"), 2, "unexpected arguments")
	empty := t.TempDir()
	r := runNodeWith(t, "", []string{"PATH=" + empty}, "chaos", "--dir", empty)
	expect(t, r, 1, "redis-server not found: run `make deps`")
	if files, _ := os.ReadDir(empty); len(files) > 0 {
		t.Errorf("chaos without redis-server left %d files in --dir", len(files))
	}
}
