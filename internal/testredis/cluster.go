package testredis

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relay-dev/relay/internal/poll"
)

// clusterNodeTimeout is the cluster-node-timeout of a test cluster: how
// long a primary may be silent before it is failed over.
const clusterNodeTimeout = 1000 * time.Millisecond

// Cluster is a Redis Cluster of redis-server processes (started with
// --cluster-enabled yes) owned by a test.
type Cluster struct {
	t     testing.TB
	nodes []*Server // the first primaries; then their replicas
	n     int       // how many of nodes started as primaries
}

// StartCluster starts primaries redis-servers in cluster mode, each with
// replicas replicas, splits the 16384 slots evenly among the primaries and
// waits until every node reports cluster_state:ok and every replica is in
// sync. A primary that fails is replaced by its replica within about two
// seconds (cluster-node-timeout 1s). The processes are killed by t.Cleanup.
func StartCluster(t testing.TB, primaries, replicas int) *Cluster {
	t.Helper()
	if primaries < 1 || replicas < 0 {
		t.Fatalf("testredis: StartCluster(%d, %d): want at least one primary", primaries, replicas)
	}
	c := &Cluster{t: t, n: primaries}
	for i := 0; i < primaries*(1+replicas); i++ {
		bus := freePort(t)
		c.nodes = append(c.nodes, startServer(t, fmt.Sprintf("redis cluster node %d", i), config{}, []string{
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", strconv.Itoa(int(clusterNodeTimeout / time.Millisecond)),
			"--cluster-port", strconv.Itoa(bus),
			"--cluster-replica-validity-factor", "0", // a replica may always take over
		}))
	}
	if err := c.form(primaries, replicas); err != nil {
		t.Fatalf("testredis: forming a cluster of %d primaries with %d replicas each: %v", primaries, replicas, err)
	}
	return c
}

// form assigns slots, introduces the nodes to each other, attaches the
// replicas and waits until the cluster is whole.
func (c *Cluster) form(primaries, replicas int) error {
	ids := make([]string, len(c.nodes))
	for i, s := range c.nodes {
		id, err := s.endpoint().str("CLUSTER", "MYID")
		if err != nil {
			return err
		}
		ids[i] = id
	}
	for i := 0; i < primaries; i++ {
		ep := c.nodes[i].endpoint()
		lo, hi := i*16384/primaries, (i+1)*16384/primaries-1
		if _, err := ep.do("CLUSTER", "ADDSLOTSRANGE", strconv.Itoa(lo), strconv.Itoa(hi)); err != nil {
			return err
		}
		// Distinct epochs before meeting, as redis-cli does, so that no
		// collision has to be resolved first.
		if _, err := ep.do("CLUSTER", "SET-CONFIG-EPOCH", strconv.Itoa(i+1)); err != nil {
			return err
		}
	}
	first := c.nodes[0].endpoint()
	for _, s := range c.nodes[1:] {
		bus := s.args[slices.Index(s.args, "--cluster-port")+1]
		if _, err := first.do("CLUSTER", "MEET", "127.0.0.1", strconv.Itoa(s.port), bus); err != nil {
			return err
		}
	}
	err := poll.Until(startTimeout, func() error {
		for _, s := range c.nodes {
			info, err := s.endpoint().str("CLUSTER", "INFO")
			if err != nil {
				return err
			}
			if got := field(info, "cluster_known_nodes"); got != strconv.Itoa(len(c.nodes)) {
				return fmt.Errorf("%s knows %s nodes of %d", s.Addr(), got, len(c.nodes))
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for r := 0; r < replicas; r++ {
		for p := 0; p < primaries; p++ {
			replica := c.nodes[primaries+r*primaries+p]
			if _, err := replica.endpoint().do("CLUSTER", "REPLICATE", ids[p]); err != nil {
				return fmt.Errorf("%s: CLUSTER REPLICATE %s: %w", replica.Addr(), ids[p], err)
			}
		}
	}
	err = poll.Until(startTimeout, func() error {
		for _, s := range c.nodes[primaries:] {
			info, err := s.endpoint().str("INFO", "replication")
			if err != nil {
				return err
			}
			if got := field(info, "master_link_status"); got != "up" {
				return fmt.Errorf("replica %s: master link %q", s.Addr(), got)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return c.poll(startTimeout)
}

// URL returns "redis+cluster://" and the addresses of the nodes that
// started as primaries, comma-separated.
func (c *Cluster) URL() string {
	addrs := make([]string, c.n)
	for i, s := range c.nodes[:c.n] {
		addrs[i] = s.Addr()
	}
	return "redis+cluster://" + strings.Join(addrs, ",")
}

// Nodes returns every node, the ones that started as primaries first.
func (c *Cluster) Nodes() []*Server { return c.nodes }

// WaitOK waits until every running node reports cluster_state:ok with all
// 16384 slots served, and sees every slot served by a running primary (a
// stopped primary has been failed over), failing the test after timeout.
func (c *Cluster) WaitOK(timeout time.Duration) {
	c.t.Helper()
	if err := c.poll(timeout); err != nil {
		c.t.Fatalf("testredis: cluster not ok after %v: %v", timeout, err)
	}
}

func (c *Cluster) poll(timeout time.Duration) error {
	return poll.Until(timeout, func() error {
		for _, s := range c.running() {
			info, err := s.endpoint().str("CLUSTER", "INFO")
			if err != nil {
				return err
			}
			if st, ok := field(info, "cluster_state"), field(info, "cluster_slots_ok"); st != "ok" || ok != "16384" {
				return fmt.Errorf("%s: cluster_state %s, slots ok %s", s.Addr(), st, ok)
			}
			nodes, err := s.endpoint().str("CLUSTER", "NODES")
			if err != nil {
				return err
			}
			for _, addr := range servingMasters(nodes) {
				if !c.isRunning(addr) {
					return fmt.Errorf("%s: slots still served by stopped %s", s.Addr(), addr)
				}
			}
		}
		return nil
	})
}

// isRunning tells whether addr is a running node of the cluster.
func (c *Cluster) isRunning(addr string) bool {
	for _, s := range c.running() {
		if s.Addr() == addr {
			return true
		}
	}
	return false
}

// servingMasters returns, from CLUSTER NODES output, the addresses of the
// masters that serve slots.
func servingMasters(nodes string) []string {
	var addrs []string
	for _, line := range strings.Split(strings.TrimSpace(nodes), "\n") {
		f := strings.Fields(line)
		if len(f) > 8 && strings.Contains(f[2], "master") {
			addr, _, _ := strings.Cut(f[1], "@")
			addrs = append(addrs, addr)
		}
	}
	return addrs
}

// running returns the nodes whose process is up.
func (c *Cluster) running() []*Server {
	var up []*Server
	for _, s := range c.nodes {
		s.mu.Lock()
		if s.cmd != nil {
			up = append(up, s)
		}
		s.mu.Unlock()
	}
	return up
}

// PrimaryFor returns the node that serves key's slot as a primary now, as
// a running node sees it.
func (c *Cluster) PrimaryFor(key string) (*Server, error) {
	var last error
	for _, s := range c.running() {
		ep := s.endpoint()
		slot, err := ep.str("CLUSTER", "KEYSLOT", key)
		if err != nil {
			last = err
			continue
		}
		nodes, err := ep.str("CLUSTER", "NODES")
		if err != nil {
			last = err
			continue
		}
		addr, err := masterOf(nodes, slot)
		if err != nil {
			return nil, err
		}
		for _, n := range c.nodes {
			if n.Addr() == addr {
				return n, nil
			}
		}
		return nil, fmt.Errorf("testredis: %s serves slot %s, not a node of this cluster", addr, slot)
	}
	if last == nil {
		last = errors.New("no node is running")
	}
	return nil, last
}

// masterOf finds, in CLUSTER NODES output, the address of the live master
// that serves slot.
func masterOf(nodes, slot string) (string, error) {
	n, err := strconv.Atoi(slot)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(strings.TrimSpace(nodes), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 || !strings.Contains(f[2], "master") || strings.Contains(f[2], "fail") {
			continue
		}
		for _, r := range f[8:] {
			lo, hi, ok := strings.Cut(r, "-")
			if !ok {
				hi = lo
			}
			a, err1 := strconv.Atoi(lo)
			b, err2 := strconv.Atoi(hi)
			if err1 == nil && err2 == nil && a <= n && n <= b {
				addr, _, _ := strings.Cut(f[1], "@")
				return addr, nil
			}
		}
	}
	return "", fmt.Errorf("testredis: no live master serves slot %d", n)
}
