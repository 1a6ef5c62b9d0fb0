package proc

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// Usage is what a process holds, read from /proc.
type Usage struct {
	FDs     int   // open file descriptors
	RSS     int64 // resident set size, bytes
	Anon    int64 // of RSS, the anonymous memory (RssAnon): what the process allocated, not its mapped files
	PeakRSS int64 // the largest RSS so far (VmHWM), bytes
	Threads int   // OS threads
}

// ReadUsage reads the usage of process pid (os.Getpid() for this one).
func ReadUsage(pid int) (Usage, error) {
	dir := fmt.Sprintf("/proc/%d", pid)
	fds, err := os.ReadDir(dir + "/fd")
	if err != nil {
		return Usage{}, fmt.Errorf("proc: usage of %d: %w", pid, err)
	}
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		return Usage{}, fmt.Errorf("proc: usage of %d: %w", pid, err)
	}
	u := Usage{FDs: len(fds)}
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(value)
		if len(fields) == 0 {
			continue
		}
		n, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			continue
		}
		switch name {
		case "VmRSS":
			u.RSS = n << 10 // kB
		case "RssAnon":
			u.Anon = n << 10
		case "VmHWM":
			u.PeakRSS = n << 10
		case "Threads":
			u.Threads = int(n)
		}
	}
	return u, nil
}

// CheckLoopback returns an error unless every address of addrs can be
// bound here, with a hint for systems where only 127.0.0.1 is local.
func CheckLoopback(addrs ...string) error {
	for _, a := range addrs {
		l, err := net.Listen("tcp", net.JoinHostPort(a, "0"))
		if err != nil {
			return fmt.Errorf("cannot bind %s (%v): this needs the loopback addresses %s; on Linux all of "+
				"127.0.0.0/8 is local, elsewhere add aliases (macOS: sudo ifconfig lo0 alias 127.0.0.2 up, and so on)",
				a, err, strings.Join(addrs, ", "))
		}
		l.Close()
	}
	return nil
}

// FreePort returns a TCP port of addr that was free a moment ago.
func FreePort(addr string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		return 0, fmt.Errorf("proc: free port on %s: %w", addr, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// FreePorts returns n distinct TCP ports of addr that were free a moment
// ago (held open together while they are chosen, so none repeats).
func FreePorts(addr string, n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
		if err != nil {
			return nil, fmt.Errorf("proc: free port on %s: %w", addr, err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Tail returns the last n lines of the file at path (a process's log), or
// why it cannot be read.
func Tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// LoadAverage returns the machine's 1, 5 and 15 minute load averages, as
// /proc/loadavg has them ("0.52 0.58 0.59"), or "unavailable".
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unavailable"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unavailable"
	}
	return strings.Join(f[:3], " ")
}
