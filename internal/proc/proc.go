// Package proc runs the child processes of a test or a harness (node
// serve, node proxy): each in its own process group, killed by the kernel
// should its parent die first, stopped with SIGTERM (then SIGKILL after a
// grace period) or killed with SIGKILL, and always reaped. It also checks
// that the loopback addresses a cluster binds are local, and reads a
// process's file descriptors and RSS from /proc.
//
//	p, err := proc.Start("srv1", logFile, nodeBin, "serve", "--topic", "chaos")
//	...
//	p.Kill()                  // kill -9, reaped on return
//	err = p.Stop(5 * time.Second) // SIGTERM; an error unless it exited 0
//
// Concurrency: the methods of Process are safe for concurrent use; each
// Process runs one goroutine, which reaps it and ends when it exits.
package proc

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// reapTimeout bounds the wait for a process killed with SIGKILL.
const reapTimeout = 10 * time.Second

// Process is a running (or exited) child process.
type Process struct {
	// Name names the process in messages.
	Name string

	cmd  *exec.Cmd
	done chan struct{} // closed once the process has been reaped
}

// Start runs bin with args as a process named name, in a process group of
// its own, with its standard output and error going to out (which may be
// nil). It is killed with SIGKILL if this process dies first.
func Start(name string, out io.Writer, bin string, args ...string) (*Process, error) {
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = time.Second // the output copiers, should a child hold the pipe
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("proc: start %s: %w", name, err)
	}
	p := &Process{Name: name, cmd: cmd, done: make(chan struct{})}
	go func() { // ends when the process exits
		_ = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Pid returns the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done returns a channel closed once the process has exited and been
// reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited (and been reaped).
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// State returns how the process exited, nil while it runs.
func (p *Process) State() *os.ProcessState {
	if !p.Exited() {
		return nil
	}
	return p.cmd.ProcessState
}

// Signal sends sig to the process's group. Signalling an exited process
// does nothing.
func (p *Process) Signal(sig syscall.Signal) {
	if !p.Exited() {
		_ = syscall.Kill(-p.cmd.Process.Pid, sig)
	}
}

// Kill sends SIGKILL and waits until the process is reaped.
func (p *Process) Kill() error {
	p.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
		return nil
	case <-time.After(reapTimeout):
		return fmt.Errorf("proc: %s not reaped %v after SIGKILL", p.Name, reapTimeout)
	}
}

// Stop sends SIGTERM and waits for the process to exit, killing it if it
// has not within grace. It returns an error when the process had to be
// killed or exited with anything but 0. Stopping an exited process only
// reports how it exited.
func (p *Process) Stop(grace time.Duration) error {
	p.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if st := p.cmd.ProcessState; !st.Success() {
			return fmt.Errorf("proc: %s exited with %s", p.Name, st)
		}
		return nil
	case <-time.After(grace):
	}
	err := fmt.Errorf("proc: %s did not exit within %v of SIGTERM; killed it", p.Name, grace)
	if kerr := p.Kill(); kerr != nil {
		err = errors.Join(err, kerr)
	}
	return err
}
