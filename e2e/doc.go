// Package e2e holds relay's multi-process tests: real `node serve`
// processes, registered in a real redis-server, called by an in-test node and
// by `node call` / `node cast` processes, killed with SIGKILL and cut off
// from Redis. Tests only; the package has no API.
//
// Run with: go test -race ./e2e (needs redis-server and libzmq; `make deps`).
// The servers bind 127.0.0.2, 127.0.0.3 and 127.0.0.4, all local on Linux.
package e2e
