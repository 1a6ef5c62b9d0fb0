package scale

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/relay-dev/relay/internal/proc"
	"github.com/relay-dev/relay/internal/testredis"
)

// Usage is what one process holds, from /proc.
type Usage struct {
	Name    string `json:"name"`
	Role    string `json:"role"` // compute, control, router proxy, publisher proxy, local publisher, redis
	Nodes   int    `json:"nodes"`
	FDs     int    `json:"fds"`
	Threads int    `json:"threads"`
	RSS     int64  `json:"rss"`
	// TCP counts the process's established TCP sockets: Redis those to
	// Redis's port, the others (ZeroMQ) the rest.
	TCP      int `json:"tcp"`
	TCPRedis int `json:"tcp_redis"`
	// CPU is the CPU time the process used so far (user + system), and
	// CPUPercent the share of one core it used between the measurement
	// halfway through the load and the one at its end.
	CPU        time.Duration `json:"cpu_ns"`
	CPUPercent float64       `json:"cpu_percent"`
}

// clockTicks is the kernel's USER_HZ, the unit of /proc/PID/stat's times.
const clockTicks = 100

// cpuTime reads the user and system time process pid used so far.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// pid (comm) state ppid ... utime is field 14, stime 15; comm may
	// hold spaces, so count from the closing parenthesis.
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("scale: /proc/%d/stat: too short", pid)
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+st) * time.Second / clockTicks, nil
}

// listenOverflows reads the kernel's count of connections dropped because
// a listening socket's accept queue was full (TcpExt ListenOverflows), for
// the whole machine.
func listenOverflows() int64 {
	b, err := os.ReadFile("/proc/net/netstat")
	if err != nil {
		return 0
	}
	lines := strings.Split(string(b), "\n")
	for i := 0; i+1 < len(lines); i += 2 {
		names, values := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		if len(names) == 0 || names[0] != "TcpExt:" || len(values) != len(names) {
			continue
		}
		for j, n := range names {
			if n == "ListenOverflows" {
				v, _ := strconv.ParseInt(values[j], 10, 64)
				return v
			}
		}
	}
	return 0
}

// tcpConn is an established TCP socket of /proc/net/tcp.
type tcpConn struct {
	localPort, remotePort int
}

// established reads /proc/net/tcp and returns the established sockets by
// inode.
func established() (map[uint64]tcpConn, error) {
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return nil, fmt.Errorf("scale: %w", err)
	}
	defer f.Close()
	out := map[uint64]tcpConn{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	sc.Scan() // the header
	for sc.Scan() {
		// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
		f := strings.Fields(sc.Text())
		if len(f) < 10 || f[3] != "01" { // 01: ESTABLISHED
			continue
		}
		inode, err := strconv.ParseUint(f[9], 10, 64)
		if err != nil || inode == 0 {
			continue
		}
		out[inode] = tcpConn{localPort: hexPort(f[1]), remotePort: hexPort(f[2])}
	}
	return out, sc.Err()
}

// hexPort reads the port of "0100007F:1F90".
func hexPort(addr string) int {
	_, p, ok := strings.Cut(addr, ":")
	if !ok {
		return 0
	}
	n, _ := strconv.ParseInt(p, 16, 32)
	return int(n)
}

// socketInodes returns the inodes of the sockets process pid holds.
func socketInodes(pid int) []uint64 {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []uint64
	for _, e := range ents {
		link, err := os.Readlink(dir + "/" + e.Name())
		if err != nil {
			continue
		}
		if s, ok := strings.CutPrefix(link, "socket:["); ok {
			if n, err := strconv.ParseUint(strings.TrimSuffix(s, "]"), 10, 64); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// usageOf reads what process pid holds; conns is established()'s map and
// redisPort Redis's port.
func usageOf(pid int, conns map[uint64]tcpConn, redisPort int) (Usage, error) {
	u, err := proc.ReadUsage(pid)
	if err != nil {
		return Usage{}, err
	}
	out := Usage{FDs: u.FDs, Threads: u.Threads, RSS: u.RSS}
	out.CPU, _ = cpuTime(pid)
	for _, ino := range socketInodes(pid) {
		c, ok := conns[ino]
		if !ok {
			continue
		}
		out.TCP++
		if c.remotePort == redisPort || c.localPort == redisPort {
			out.TCPRedis++
		}
	}
	return out, nil
}

// RedisStats is what Redis reports of itself.
type RedisStats struct {
	Commands   int64   `json:"commands"` // total_commands_processed
	UsedMemory int64   `json:"used_memory"`
	Clients    int64   `json:"clients"`   // connected_clients
	PubSub     int64   `json:"pubsub"`    // pubsub_clients (Redis 7.4+) or 0
	CPU        float64 `json:"cpu_s"`     // used_cpu_user + used_cpu_sys
	Keys       int64   `json:"keys"`      // keys of db0
	Published  int64   `json:"published"` // cmdstat_publish calls
	// Calls counts the commands by name (INFO commandstats), those that
	// scripts run included.
	Calls map[string]int64 `json:"calls"`
}

// redisTries is how often readRedis asks Redis before it fails.
const redisTries = 5

// readRedis reads rs's INFO.
func readRedis(rs *testredis.Server) (RedisStats, error) {
	text, err := rs.Do("INFO", "everything")
	// A Redis that a thousand nodes keep busy may accept a new connection
	// late: try again before giving up on the run.
	for try := 1; err != nil && try < redisTries; try++ {
		time.Sleep(time.Second)
		text, err = rs.Do("INFO", "everything")
	}
	if err != nil {
		return RedisStats{}, fmt.Errorf("scale: redis INFO (%d tries): %w", redisTries, err)
	}
	s, _ := text.(string)
	fields := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			fields[k] = v
		}
	}
	num := func(k string) float64 {
		v := fields[k]
		if strings.HasPrefix(v, "calls=") || strings.HasPrefix(v, "keys=") {
			v = strings.SplitN(strings.SplitN(v, ",", 2)[0], "=", 2)[1]
		}
		f, _ := strconv.ParseFloat(v, 64)
		return f
	}
	calls := map[string]int64{}
	for k := range fields {
		if name, ok := strings.CutPrefix(k, "cmdstat_"); ok {
			calls[name] = int64(num(k))
		}
	}
	return RedisStats{
		Calls:      calls,
		Commands:   int64(num("total_commands_processed")),
		UsedMemory: int64(num("used_memory")),
		Clients:    int64(num("connected_clients")),
		PubSub:     int64(num("pubsub_clients")),
		CPU:        num("used_cpu_user") + num("used_cpu_sys"),
		Keys:       int64(num("db0")),
		Published:  int64(num("cmdstat_publish")),
	}, nil
}

// cpuPressure returns the "some avg60" figure of /proc/pressure/cpu, or
// "unavailable".
func cpuPressure() string {
	b, err := os.ReadFile("/proc/pressure/cpu")
	if err != nil {
		return "unavailable"
	}
	for _, f := range strings.Fields(strings.SplitN(string(b), "\n", 2)[0]) {
		if v, ok := strings.CutPrefix(f, "avg60="); ok {
			return v
		}
	}
	return "unavailable"
}

// mark is what a phase reads at its start, to report at its end what
// changed: Redis's counters and the kernel's listen overflows.
type mark struct {
	redis     RedisStats
	overflows int64
}

// markStart reads Redis's counters and the listen overflows.
func (h *harness) markStart() (mark, error) {
	r, err := readRedis(h.rs)
	return mark{redis: r, overflows: listenOverflows()}, err
}
