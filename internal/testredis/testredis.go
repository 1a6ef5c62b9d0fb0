// Package testredis starts real redis-server (and redis-sentinel) processes
// for tests: each on a free port on 127.0.0.1, with no persistence, in a
// t.TempDir, killed by t.Cleanup.
//
//	srv := testredis.Start(t)
//	m, err := matchmaker.Open(srv.URL())
//	...
//	srv.Stop()    // outage
//	srv.Restart() // back on the same port, empty
//
// A missing binary fails the test with a message saying how to install it; it
// never skips.
//
// Concurrency: the methods of Server and Sentinel are safe for concurrent use.
// The package starts no goroutines.
package testredis

import (
	"bufio"
	"errors"
	"fmt"
	"github.com/relay-dev/relay/internal/testutil"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// startTimeout bounds how long a started process may take to answer PING.
const startTimeout = 10 * time.Second

// Server is a redis-server process owned by a test.
type Server struct {
	t    testing.TB
	name string   // for messages: "redis-server", "redis replica"
	bin  string   // path of the binary
	dir  string   // working directory (t.TempDir)
	port int      // fixed for the Server's life, kept across Restart
	args []string // extra arguments after the common ones

	// mu guards cmd.
	mu  sync.Mutex
	cmd *exec.Cmd // nil while stopped
}

// Start starts a redis-server on a free port of 127.0.0.1, waits until it
// answers PING and registers its kill with t.Cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	return startServer(t, "redis-server", nil)
}

func startServer(t testing.TB, name string, extra []string) *Server {
	t.Helper()
	bin := lookPath(t, "redis-server")
	s := &Server{t: t, name: name, bin: bin, dir: t.TempDir(), port: freePort(t), args: extra}
	t.Cleanup(s.Stop)
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	return s
}

// Addr returns "127.0.0.1:PORT".
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// URL returns "redis://127.0.0.1:PORT".
func (s *Server) URL() string { return "redis://" + s.Addr() }

// Port returns the server's TCP port.
func (s *Server) Port() int { return s.port }

// Stop kills the server (SIGKILL: an outage, not a shutdown) and waits for it
// to exit. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	kill(s.cmd)
	s.cmd = nil
}

// Restart starts the server again on the same port, with an empty dataset,
// and waits until it answers PING. It fails the test if it cannot.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		s.t.Fatal(err)
	}
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return nil
	}
	args := append([]string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
	}, s.args...)
	cmd, err := startProcess(s.name, s.bin, s.dir, args, s.Addr())
	if err != nil {
		return err
	}
	s.cmd = cmd
	return nil
}

// startProcess runs bin with args in dir, logging to dir/NAME.log, and waits
// until addr answers PING. On failure the process is killed and the error
// carries the tail of its log.
func startProcess(name, bin, dir string, args []string, addr string) (*exec.Cmd, error) {
	logPath := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("testredis: %s log: %w", name, err)
	}
	defer logf.Close() // the child holds its own descriptor
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("testredis: start %s: %w", name, err)
	}
	if err := testutil.Poll(startTimeout, func() error { return ping(addr) }); err != nil {
		kill(cmd)
		return nil, fmt.Errorf("testredis: %s on %s did not answer PING within %v: %v\n%s log:\n%s",
			name, addr, startTimeout, err, name, tail(logPath))
	}
	return cmd, nil
}

// kill kills cmd's process and reaps it. cmd may be nil.
func kill(cmd *exec.Cmd) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
}

// ping sends PING to addr and expects +PONG.
func ping(addr string) error {
	_, err := command(addr, "PING")
	return err
}

// command sends one command to addr and returns the first line of the
// reply. An error reply is returned as an error.
func command(addr string, args ...string) (string, error) {
	var line string
	err := roundTrip(addr, args, func(rd *bufio.Reader) (err error) {
		line, err = readLine(rd)
		return err
	})
	return line, err
}

// commandArray sends one command to addr and returns its reply, an array of
// bulk strings (a nil array is empty).
func commandArray(addr string, args ...string) ([]string, error) {
	var out []string
	err := roundTrip(addr, args, func(rd *bufio.Reader) error {
		line, err := readLine(rd)
		if err != nil {
			return err
		}
		if !strings.HasPrefix(line, "*") {
			return fmt.Errorf("testredis: want an array, got %q", line)
		}
		n, _ := strconv.Atoi(line[1:])
		for i := 0; i < n; i++ {
			head, err := readLine(rd)
			if err != nil {
				return err
			}
			if !strings.HasPrefix(head, "$") {
				return fmt.Errorf("testredis: want a bulk string, got %q", head)
			}
			s, err := readLine(rd)
			if err != nil {
				return err
			}
			out = append(out, s)
		}
		return nil
	})
	return out, err
}

// roundTrip dials addr, writes args as a RESP command and lets read parse
// the reply, all within one second.
func roundTrip(addr string, args []string, read func(*bufio.Reader) error) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := conn.Write([]byte(b.String())); err != nil {
		return err
	}
	return read(bufio.NewReader(conn))
}

// readLine reads one line of a reply; an error line becomes an error.
func readLine(rd *bufio.Reader) (string, error) {
	line, err := rd.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if strings.HasPrefix(line, "-") {
		return "", errors.New(line[1:])
	}
	return line, nil
}

// lookPath finds a binary or fails the test saying how to install it.
func lookPath(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found: run `make deps` (installs %s)", name, name)
	}
	return p
}

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testredis: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// tail returns the last lines of the file at path.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}
