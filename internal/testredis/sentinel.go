package testredis

import (
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/relay-dev/relay/internal/poll"
)

// MasterName is the name under which a Sentinel monitors its master.
const MasterName = "mymaster"

// Sentinel is a redis-sentinel process monitoring a master, with one replica
// of that master, all owned by a test.
type Sentinel struct {
	t       testing.TB
	bin     string
	dir     string
	port    int
	master  *Server
	replica *Server
	cfg     config // the sentinel's own: its password

	// mu guards cmd.
	mu  sync.Mutex
	cmd *exec.Cmd
}

// StartSentinel starts a replica of master and a redis-sentinel monitoring
// master as MasterName (quorum 1, down-after-milliseconds 1000,
// failover-timeout 3000). It waits until the sentinel reports the master and
// knows the replica, and registers the kills with t.Cleanup. The replica
// and the sentinel use master's password for the data nodes; WithPassword
// among opts sets the sentinel's own (other options are not supported).
func StartSentinel(t testing.TB, master *Server, opts ...Option) *Sentinel {
	t.Helper()
	var c config
	for _, o := range opts {
		o(&c)
	}
	if master.certs != nil || c.tls || len(c.users) > 0 {
		t.Fatal("testredis: StartSentinel supports passwords only (no TLS, no ACL users)")
	}
	replica := startServer(t, "redis replica", master.cfg, []string{
		"--replicaof", "127.0.0.1", strconv.Itoa(master.Port()),
		"--replica-announce-ip", "127.0.0.1",
	})
	s := &Sentinel{
		t:       t,
		bin:     lookPath(t, "redis-sentinel"),
		dir:     t.TempDir(),
		port:    freePort(t),
		master:  master,
		replica: replica,
		cfg:     c,
	}
	t.Cleanup(s.Stop)
	conf := filepath.Join(s.dir, "sentinel.conf")
	text := fmt.Sprintf(`port %d
bind 127.0.0.1
dir %s
sentinel monitor %s 127.0.0.1 %d 1
sentinel down-after-milliseconds %s 1000
sentinel failover-timeout %s 3000
`, s.port, s.dir, MasterName, master.Port(), MasterName, MasterName)
	if pw := master.cfg.password; pw != "" {
		text += fmt.Sprintf("sentinel auth-pass %s %s\n", MasterName, pw)
	}
	if c.password != "" {
		text += fmt.Sprintf("requirepass %s\n", c.password)
	}
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatalf("testredis: sentinel config: %v", err)
	}
	cmd, err := startProcess("redis-sentinel", s.bin, s.dir, []string{conf}, s.endpoint())
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.cmd = cmd
	s.mu.Unlock()
	// Wait until the sentinel has seen the replica (it learns replicas from
	// the master's INFO), so that a failover has somewhere to go.
	err = poll.Until(3*startTimeout, func() error {
		if _, err := s.MasterAddr(); err != nil {
			return err
		}
		reps, err := s.countReplicas()
		if err == nil && reps == 0 {
			err = fmt.Errorf("no replica yet")
		}
		return err
	})
	if err != nil {
		t.Fatalf("testredis: sentinel %s never saw replica %s of master %s (%v)", s.Addr(), replica.Addr(), master.Addr(), err)
	}
	return s
}

// Addr returns the sentinel's "127.0.0.1:PORT".
func (s *Sentinel) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// URL returns "redis+sentinel://127.0.0.1:PORT/mymaster", with the data
// nodes' password as ":PASSWORD@" and the sentinel's as
// "?sentinel_password=" when they have one.
func (s *Sentinel) URL() string {
	u := url.URL{Scheme: "redis+sentinel", Host: s.Addr(), Path: "/" + MasterName}
	if pw := s.master.cfg.password; pw != "" {
		u.User = url.UserPassword("", pw)
	}
	if s.cfg.password != "" {
		u.RawQuery = url.Values{"sentinel_password": {s.cfg.password}}.Encode()
	}
	return u.String()
}

func (s *Sentinel) endpoint() endpoint { return endpoint{addr: s.Addr(), password: s.cfg.password} }

// Replica returns the replica of the master.
func (s *Sentinel) Replica() *Server { return s.replica }

// MasterAddr asks the sentinel for the current master's address.
func (s *Sentinel) MasterAddr() (string, error) {
	reply, err := s.endpoint().strings("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MasterName)
	if err != nil {
		return "", err
	}
	if len(reply) != 2 {
		return "", fmt.Errorf("testredis: sentinel %s: no master %s", s.Addr(), MasterName)
	}
	return reply[0] + ":" + reply[1], nil
}

// Stop kills the sentinel. The master and replica are stopped by their own
// cleanups.
func (s *Sentinel) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	kill(s.cmd)
	s.cmd = nil
}

// countReplicas returns how many replicas the sentinel knows for MasterName.
func (s *Sentinel) countReplicas() (int, error) {
	reply, err := s.endpoint().do("SENTINEL", "REPLICAS", MasterName)
	if err != nil {
		return 0, err
	}
	arr, ok := reply.([]any)
	if !ok {
		return 0, fmt.Errorf("testredis: SENTINEL REPLICAS: unexpected reply %T", reply)
	}
	return len(arr), nil
}
