package chaos

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/relay-dev/relay/internal/proc"
	"github.com/relay-dev/relay/internal/testutil"
)

// Process roles.
const (
	roleServer    = "server"
	roleRouter    = "router proxy"
	rolePublisher = "publisher proxy"
	roleRedis     = "redis"
	roleHarness   = "harness"
)

// How an incarnation of a process ended.
const (
	endRunning  = ""             // it still runs
	endKilled   = "killed"       // by a fault (kill -9)
	endStopped  = "stopped"      // SIGTERM at the end of the run, exit 0
	endUnclean  = "unclean stop" // SIGTERM at the end, but a bad exit or no exit
	endCrashed  = "crashed"      // exited by itself after it was ready, or with a panic
	endNotReady = "failed start" // exited by itself before it was ready (retried)
)

// startTimeout bounds how long a process may take to be ready.
const startTimeout = 15 * time.Second

// stopGrace is how long a process has to exit after SIGTERM.
const stopGrace = 10 * time.Second

// member is one process of the cluster (a server or a proxy) across its
// restarts.
type member struct {
	name, role string
	addr       string                          // the loopback address it binds
	port       int                             // servers: the port it binds
	httpAddr   string                          // its --http (pprof)
	ready      string                          // what it logs once it serves
	args       func(inc *incarnation) []string // its command line

	// mu guards the fields below.
	mu   sync.Mutex
	incs []*incarnation // every start, the last one current
}

// incarnation is one start of a member's process.
type incarnation struct {
	n       int // 1, 2, ...
	p       *proc.Process
	log     string // its output
	journal string // servers: its journal
	port    int    // servers: the port it binds

	started, readyAt, ended time.Time
	end                     string // endRunning, endKilled, ...
	exit                    string // its exit status, once it exited
	tail                    string // the end of its log, when it crashed
	signalled               bool   // the harness killed or stopped it
}

// current returns the member's current incarnation (nil before its first
// start).
func (m *member) current() *incarnation {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.incs) == 0 {
		return nil
	}
	return m.incs[len(m.incs)-1]
}

// launch starts a new incarnation and waits until it is ready. An
// incarnation that exits before it is ready is recorded as a failed start
// and launch tries again, until ctx ends. nodeBin runs it, its files go in
// dir; port is the port a server binds (0: any).
func (m *member) launch(ctx context.Context, nodeBin, dir string, port int) error {
	for {
		inc, err := m.startOnce(nodeBin, dir, port)
		if err != nil {
			return err
		}
		err = testutil.Poll(startTimeout, func() error {
			if inc.p.Exited() || logHas(inc.log, m.ready) {
				return nil
			}
			return fmt.Errorf("%s not ready after %v", m.name, startTimeout)
		})
		if err != nil {
			return fmt.Errorf("chaos: %w (log %s:\n%s)", err, inc.log, proc.Tail(inc.log, 15))
		}
		if !inc.p.Exited() {
			m.mu.Lock()
			inc.readyAt = time.Now()
			m.mu.Unlock()
			return nil
		}
		// A failed start (Redis down, no proxy registered yet) or a
		// crash: try again after a pause, unless the run is over.
		m.ended(inc)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// startOnce starts one incarnation.
func (m *member) startOnce(nodeBin, dir string, port int) (*incarnation, error) {
	m.mu.Lock()
	inc := &incarnation{n: len(m.incs) + 1, port: port, started: time.Now()}
	inc.log = filepath.Join(dir, fmt.Sprintf("%s.%d.log", m.name, inc.n))
	if m.role == roleServer {
		inc.journal = filepath.Join(dir, fmt.Sprintf("%s.%d.journal", m.name, inc.n))
	}
	m.incs = append(m.incs, inc)
	m.mu.Unlock()
	out, err := os.Create(inc.log)
	if err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	defer out.Close() // the child has its own descriptor
	p, err := proc.Start(m.name, out, nodeBin, m.args(inc)...)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	inc.p = p
	m.mu.Unlock()
	go m.watch(inc) // ends when the process exits
	return inc, nil
}

// watch records how inc ended once its process exits.
// Runs in its own goroutine.
func (m *member) watch(inc *incarnation) {
	<-inc.p.Done()
	m.ended(inc)
}

// ended records how inc, whose process has exited, ended, unless the
// harness did (kill, stop): a failed start if it exited before it was
// ready without a panic, else a crash. Calling it again changes nothing.
func (m *member) ended(inc *incarnation) {
	t := proc.Tail(inc.log, 15)
	m.mu.Lock()
	defer m.mu.Unlock()
	if inc.exit == "" {
		inc.exit = inc.p.State().String()
	}
	if inc.ended.IsZero() {
		inc.ended = time.Now()
	}
	if inc.signalled || inc.end != endRunning {
		return
	}
	inc.end = endCrashed
	if inc.readyAt.IsZero() && !strings.Contains(t, "panic") && !strings.Contains(t, "fatal error") {
		inc.end = endNotReady
	}
	inc.tail = t
}

// kill kills the current incarnation (kill -9) and returns when it is
// reaped.
func (m *member) kill() error {
	inc := m.current()
	m.mu.Lock()
	if inc == nil || inc.p == nil || inc.p.Exited() {
		m.mu.Unlock()
		return fmt.Errorf("%s is not running", m.name)
	}
	inc.signalled, inc.ended = true, time.Now()
	m.mu.Unlock()
	err := inc.p.Kill()
	m.mu.Lock()
	inc.end = endKilled
	m.mu.Unlock()
	return err
}

// stop stops the current incarnation with SIGTERM, if it runs.
func (m *member) stop() {
	inc := m.current()
	m.mu.Lock()
	if inc == nil || inc.p == nil || inc.end != endRunning {
		m.mu.Unlock()
		return
	}
	running := !inc.p.Exited()
	inc.signalled = running
	m.mu.Unlock()
	if !running {
		return // it crashed: watch recorded it
	}
	err := inc.p.Stop(stopGrace)
	m.mu.Lock()
	defer m.mu.Unlock()
	inc.ended = time.Now()
	inc.end = endStopped
	if err != nil {
		inc.end, inc.tail = endUnclean, err.Error()+"\n"+proc.Tail(inc.log, 15)
	}
}

// running returns the pid of the current incarnation when it runs and is
// ready.
func (m *member) running() (pid int, ok bool) {
	inc := m.current()
	m.mu.Lock()
	defer m.mu.Unlock()
	if inc == nil || inc.p == nil || inc.readyAt.IsZero() || inc.p.Exited() {
		return 0, false
	}
	return inc.p.Pid(), true
}

// snapshot returns a copy of the member's incarnations.
func (m *member) snapshot() []incarnation {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]incarnation, len(m.incs))
	for i, inc := range m.incs {
		out[i] = *inc
	}
	return out
}

// logHas reports whether the file at path contains s.
func logHas(path, s string) bool {
	b, err := os.ReadFile(path)
	return err == nil && strings.Contains(string(b), s)
}

// goroutines asks the pprof handler at addr (a process's --http) how many
// goroutines the process runs.
func goroutines(client *http.Client, addr string) (int, error) {
	resp, err := client.Get("http://" + addr + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256))
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	const prefix = "goroutine profile: total "
	if !strings.HasPrefix(line, prefix) {
		return 0, fmt.Errorf("goroutines of %s: unexpected %q", addr, line)
	}
	return strconv.Atoi(strings.TrimPrefix(line, prefix))
}
