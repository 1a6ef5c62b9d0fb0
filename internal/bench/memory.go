package bench

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/relay-dev/relay"
)

// IdleNodes is how many nodes IdleNodeMemory starts.
const IdleNodes = 10

// pendingWait bounds how long PendingCallMemory waits for its calls to
// reach the server's handlers and queue.
const pendingWait = time.Minute

// Memory is what nodes or calls hold, per node or per call, between two
// readings of runtime.MemStats each taken after a full GC. HeapBytes is Go
// heap only: goroutine stacks are not heap (StackBytes shows them apart),
// and neither is what libzmq allocates in C.
type Memory struct {
	Count      int     `json:"count"`       // nodes or pending calls measured
	HeapBytes  float64 `json:"heap_bytes"`  // HeapAlloc delta / Count
	StackBytes float64 `json:"stack_bytes"` // StackInuse delta / Count
	Goroutines float64 `json:"goroutines"`  // goroutine delta / Count
}

// memSnapshot is one reading after a full GC.
type memSnapshot struct {
	heap, stack uint64
	goroutines  int
}

func readMem() memSnapshot {
	// Two cycles: the first frees what sync.Pools dropped into their
	// victim caches, the second what the victim caches held.
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return memSnapshot{heap: m.HeapAlloc, stack: m.StackInuse, goroutines: runtime.NumGoroutine()}
}

// per returns the growth from a to b divided by count.
func (a memSnapshot) per(b memSnapshot, count int) Memory {
	return Memory{
		Count:      count,
		HeapBytes:  (float64(b.heap) - float64(a.heap)) / float64(count),
		StackBytes: (float64(b.stack) - float64(a.stack)) / float64(count),
		Goroutines: float64(b.goroutines-a.goroutines) / float64(count),
	}
}

// IdleNodeMemory starts IdleNodes nodes on one in-memory matchmaker, each
// serving a target of its own and having made one call (to the next node's
// target, so that each has a client and a server connection), and returns
// the memory they hold per node once idle.
func IdleNodeMemory(ctx context.Context) (res Memory, err error) {
	mm := "memory://bench-idle-" + randomHex()
	before := readMem()
	nodes := make([]*relay.Node, 0, IdleNodes)
	defer func() {
		for _, n := range nodes {
			if cerr := n.Close(); err == nil {
				err = cerr
			}
		}
	}()
	topic := func(i int) relay.Target { return relay.Target{Topic: fmt.Sprintf("idle-%d", i%IdleNodes)} }
	for i := 0; i < IdleNodes; i++ {
		n, err := relay.Start(ctx, relay.WithMatchmaker(mm), relay.WithHost(fmt.Sprintf("idle-%d", i)))
		if err != nil {
			return Memory{}, fmt.Errorf("bench: idle nodes: start node %d: %w", i, err)
		}
		nodes = append(nodes, n)
		s, err := n.Serve(topic(i))
		if err != nil {
			return Memory{}, fmt.Errorf("bench: idle nodes: serve: %w", err)
		}
		s.Handle("ping", func(context.Context, *relay.Request) (any, error) { return nil, nil })
	}
	for i, n := range nodes {
		if err := n.Call(ctx, topic(i+1), "ping", nil, nil); err != nil {
			return Memory{}, fmt.Errorf("bench: idle nodes: node %d calls %s: %w", i, topic(i+1), err)
		}
	}
	return before.per(readMem(), IdleNodes), nil
}

// PendingCallMemory puts m calls in flight at once, from m goroutines, to
// a server whose handler blocks (its handler queue holds them all), waits
// until the server holds every one (running or queued), and returns the
// memory held per pending call, client and server together. The callers'
// goroutines exist before the first reading, so their own memory is not
// counted; the handler workers' is.
func PendingCallMemory(ctx context.Context, m, size int) (res Memory, err error) {
	if m < 1 || size < 0 {
		return Memory{}, fmt.Errorf("bench: pending calls: need m >= 1 and size >= 0, got m=%d size=%d", m, size)
	}
	// m callers start at once: more than the default send queue (8192)
	// may find it full before the sender's loop drains it, so they wait
	// for room instead of failing (this row measures memory, not
	// back-pressure). The server's send queue takes all m replies: its
	// handlers, released together, answer faster than its loop sends, and
	// a reply that finds the queue full is dropped (DroppedReplies).
	p, err := startPair(ctx, mode{server: []relay.Option{relay.WithHandlerQueue(m + 1), relay.WithQueueSize(m + 1)},
		both: []relay.Option{relay.WithWaitOnFull(true)}})
	if err != nil {
		return Memory{}, err
	}
	defer p.close(&err)
	payload := make([]byte, size)
	var out []byte
	if err := p.client.Call(ctx, target, "echo", payload, &out); err != nil {
		return Memory{}, fmt.Errorf("bench: pending calls: warm-up call: %w (%s)", err, p.stats())
	}

	// The callers wait for start, so that they exist before the first
	// reading; closing p.release lets the blocked handlers return.
	start := make(chan struct{})
	var startOnce sync.Once
	open := func() { startOnce.Do(func() { close(start) }) }
	errs := make(chan error, m)
	var wg sync.WaitGroup
	defer func() {
		open()
		close(p.release)
		wg.Wait()
		close(errs)
		if err == nil {
			err = <-errs // the first call that failed, if any
		}
	}()
	for i := 0; i < m; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if err := p.client.Call(ctx, target, "block", payload, nil); err != nil {
				errs <- fmt.Errorf("bench: pending calls: %w", err)
			}
		}()
	}
	before := readMem()
	open()
	deadline := time.Now().Add(pendingWait)
	for {
		st := p.server.Stats()
		if st.Handlers+st.Queued >= m {
			break
		}
		if len(errs) > 0 {
			return Memory{}, <-errs
		}
		if time.Now().After(deadline) {
			return Memory{}, fmt.Errorf("bench: pending calls: %d of %d held by the server after %v (%s)",
				st.Handlers+st.Queued, m, pendingWait, p.stats())
		}
		select {
		case <-ctx.Done():
			return Memory{}, ctx.Err()
		case <-time.After(5 * time.Millisecond): // polling the server's gauges
		}
	}
	res = before.per(readMem(), m)
	return res, nil
}
