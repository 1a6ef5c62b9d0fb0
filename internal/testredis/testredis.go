// Package testredis starts real redis-server (and redis-sentinel) processes
// for tests: each on a free port on 127.0.0.1, with no persistence, in a
// t.TempDir, killed by t.Cleanup (and by the kernel if the test process
// dies first).
//
//	srv := testredis.Start(t)
//	m, err := matchmaker.Open(srv.URL())
//	...
//	srv.Stop()    // outage
//	srv.Restart() // back on the same port, empty
//
// Options add a password (WithPassword), ACL users (WithUser) or TLS
// (WithTLS, with certificates made for the test); StartCluster starts a
// Redis Cluster and StartSentinel a Sentinel with a replica.
//
// A missing binary fails the test with a message saying how to install it; it
// never skips.
//
// Launch starts a plain server for a program rather than a test (`node
// chaos`): the caller stops it, and Relaunch restarts it empty; RunDir
// checks first that the binary is there and makes the program's directory.
//
// Concurrency: the methods of Server, Sentinel and Cluster are safe for
// concurrent use. The package starts no goroutines.
package testredis

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/relay-dev/relay/internal/poll"
	"github.com/relay-dev/relay/internal/proc"
)

// startTimeout bounds how long a started process may take to answer PING.
const startTimeout = 10 * time.Second

// Option configures a process started by Start or StartSentinel.
type Option func(*config)

type config struct {
	password string   // requirepass (and masterauth, for replicas)
	users    []string // ACL rules, one user each
	tls      bool
}

// WithPassword sets the default user's password (requirepass). A replica
// started by StartSentinel uses it for its master too.
func WithPassword(pw string) Option { return func(c *config) { c.password = pw } }

// WithUser adds an ACL user, in redis.conf's `user` syntax without the
// keyword: "relay on >secret ~relay:* &relay:* +@all".
func WithUser(rule string) Option { return func(c *config) { c.users = append(c.users, rule) } }

// WithTLS serves TLS only (no plaintext port), with a CA, a server
// certificate for 127.0.0.1 and a client certificate made for the test
// (see Server.Certs). Clients must present the client certificate.
func WithTLS() Option { return func(c *config) { c.tls = true } }

// Server is a redis-server process owned by a test.
type Server struct {
	t     testing.TB
	name  string   // for messages: "redis-server", "redis replica"
	bin   string   // path of the binary
	dir   string   // working directory (t.TempDir)
	port  int      // fixed for the Server's life, kept across Restart
	args  []string // extra arguments after the common ones
	cfg   config
	certs *Certs // nil without TLS

	// mu guards cmd.
	mu  sync.Mutex
	cmd *exec.Cmd // nil while stopped
}

// Start starts a redis-server on a free port of 127.0.0.1, waits until it
// answers PING and registers its kill with t.Cleanup.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	var c config
	for _, o := range opts {
		o(&c)
	}
	return startServer(t, "redis-server", c, nil)
}

func startServer(t testing.TB, name string, c config, extra []string) *Server {
	t.Helper()
	bin := lookPath(t, "redis-server")
	s := &Server{t: t, name: name, bin: bin, dir: t.TempDir(), port: freePort(t), cfg: c}
	if c.password != "" {
		extra = append(extra, "--requirepass", c.password, "--masterauth", c.password)
	}
	for _, u := range c.users {
		extra = append(append(extra, "--user"), strings.Fields(u)...)
	}
	if c.tls {
		s.certs = makeCerts(t, s.dir)
		extra = append(extra,
			"--tls-port", strconv.Itoa(s.port), "--port", "0",
			"--tls-cert-file", s.certs.ServerCert, "--tls-key-file", s.certs.ServerKey,
			"--tls-ca-cert-file", s.certs.CA, "--tls-auth-clients", "yes",
			"--tls-replication", "yes")
	}
	s.args = extra
	t.Cleanup(s.Stop)
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	return s
}

// RunDir is what a program that will Launch does first (`node chaos`,
// `node scale`, named by program): it runs check, the program's checks of
// its configuration, and checks that redis-server is installed. It returns
// dir, or when dir is empty a new temporary directory relay-<program>-*.
// Errors but check's start with program.
func RunDir(program, dir string, check func() error) (string, error) {
	if err := check(); err != nil {
		return "", err
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		return "", fmt.Errorf("%s: redis-server not found: run `make deps` (installs redis-server)", program)
	}
	if dir != "" {
		return dir, nil
	}
	dir, err := os.MkdirTemp("", "relay-"+program+"-")
	if err != nil {
		return "", fmt.Errorf("%s: %w", program, err)
	}
	return dir, nil
}

// LaunchIn launches a server (see Launch) in the directory redis of a
// program's run directory (see RunDir), which it makes, and returns the
// server and that directory.
func LaunchIn(runDir string) (*Server, string, error) {
	dir := filepath.Join(runDir, "redis")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "", err
	}
	s, err := Launch(dir)
	return s, dir, err
}

// Launch starts a redis-server as Start does, without a test: in dir, on a
// free port of 127.0.0.1, with no persistence. The caller must Stop it (it
// is also killed if this process dies). A missing binary is an error
// saying to run `make deps`.
func Launch(dir string) (*Server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server not found: run `make deps` (installs redis-server)")
	}
	port, err := proc.FreePort("127.0.0.1")
	if err != nil {
		return nil, err
	}
	s := &Server{name: "redis-server", bin: bin, dir: dir, port: port}
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, nil
}

// Addr returns "127.0.0.1:PORT".
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// URL returns a URL that reaches the server as its default user:
// "redis://127.0.0.1:PORT", with ":PASSWORD@" when it has one, and for TLS
// "rediss://…?tls_ca=…&tls_cert=…&tls_key=…".
func (s *Server) URL() string {
	u := url.URL{Scheme: "redis", Host: s.Addr()}
	if s.cfg.password != "" {
		u.User = url.UserPassword("", s.cfg.password)
	}
	if s.certs != nil {
		u.Scheme = "rediss"
		u.RawQuery = s.certs.Query()
	}
	return u.String()
}

// Port returns the server's TCP port.
func (s *Server) Port() int { return s.port }

// Certs returns the TLS files of a server started WithTLS, nil otherwise.
func (s *Server) Certs() *Certs { return s.certs }

// Do sends one command to the server (as its default user) and returns the
// reply: a string, an int64, nil, or a []any of those.
func (s *Server) Do(args ...string) (any, error) { return s.endpoint().do(args...) }

// Info returns the value of field in the server's INFO EVERYTHING (e.g.
// "total_commands_processed", "cmdstat_publish"), or "" when there is none.
func (s *Server) Info(fieldName string) (string, error) {
	text, err := s.endpoint().str("INFO", "everything")
	if err != nil {
		return "", err
	}
	return field(text, fieldName), nil
}

func (s *Server) endpoint() endpoint {
	ep := endpoint{addr: s.Addr(), password: s.cfg.password}
	if s.certs != nil {
		ep.tls = s.certs.clientConfig()
	}
	return ep
}

// Stop kills the server (SIGKILL: an outage, not a shutdown) and waits for it
// to exit. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	kill(s.cmd)
	s.cmd = nil
}

// Restart starts the server again on the same port, with an empty dataset,
// and waits until it answers PING. It fails the test if it cannot. (For a
// server of Launch, use Relaunch.)
func (s *Server) Restart() {
	s.t.Helper()
	if err := s.Relaunch(); err != nil {
		s.t.Fatal(err)
	}
}

// Relaunch is Restart returning its error: it kills the server if it runs,
// starts it again on the same port, empty, and waits until it answers PING.
func (s *Server) Relaunch() error {
	s.Stop()
	return s.start()
}

// Pid returns the process id of the running server, 0 while it is stopped.
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
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
		"--repl-diskless-sync-delay", "0", // replicas sync at once, not after 5 s
		"--dir", s.dir,
	}, s.args...) // later arguments win: --port 0 for TLS
	cmd, err := startProcess(s.name, s.bin, s.dir, args, s.endpoint())
	if err != nil {
		return err
	}
	s.cmd = cmd
	return nil
}

// startProcess runs bin with args in dir, logging to dir/NAME.log, and waits
// until ep answers PING. On failure the process is killed and the error
// carries the tail of its log.
func startProcess(name, bin, dir string, args []string, ep endpoint) (*exec.Cmd, error) {
	logPath := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("testredis: %s log: %w", name, err)
	}
	defer logf.Close() // the child holds its own descriptor
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	// Killed with the test process, should that die before its cleanups
	// run (a test timeout): no redis-server outlives its test.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("testredis: start %s: %w", name, err)
	}
	if err := poll.Until(startTimeout, func() error { _, err := ep.do("PING"); return err }); err != nil {
		kill(cmd)
		return nil, fmt.Errorf("testredis: %s on %s did not answer PING within %v: %v\n%s log:\n%s",
			name, ep.addr, startTimeout, err, name, proc.Tail(logPath, 20))
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
	port, err := proc.FreePort("127.0.0.1")
	if err != nil {
		t.Fatalf("testredis: %v", err)
	}
	return port
}
