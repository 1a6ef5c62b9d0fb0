package e2e_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relay-dev/relay"
	procpkg "github.com/relay-dev/relay/internal/proc"
	"github.com/relay-dev/relay/internal/testredis"
)

// soak is how long the memory tests drive load: RELAY_SOAK (a duration)
// or short, the default under make test. docs/RELIABILITY.md records
// 60-second runs (RELAY_SOAK=60s).
func soak(t *testing.T, short time.Duration) time.Duration {
	t.Helper()
	s := os.Getenv("RELAY_SOAK")
	if s == "" {
		return short
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("RELAY_SOAK=%q: want a duration such as 60s: %v", s, err)
	}
	return d
}

// peak is the most of a process's memory seen, in MiB: all of its RSS,
// and its anonymous part.
type peak struct{ rss, anon float64 }

// peakRSS follows the RSS of process pid every 100 ms until stop closes,
// and returns the largest it saw.
func peakRSS(t *testing.T, pid int, stop <-chan struct{}) <-chan peak {
	t.Helper()
	out := make(chan peak, 1)
	go func() {
		var rss, anon int64
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			if u, err := procpkg.ReadUsage(pid); err == nil {
				rss, anon = max(rss, u.RSS), max(anon, u.Anon)
			}
			select {
			case <-stop:
				out <- peak{rss: float64(rss) / (1 << 20), anon: float64(anon) / (1 << 20)}
				return
			case <-tick.C:
			}
		}
	}()
	return out
}

// A client calls echo with 64 KiB arguments and acks at 200 calls/s: the
// server remembers each answer for resends, but no more than its bound
// (--dedup-mib), so the memory it allocates stays within the bound plus
// 50 MiB (it grew to 1.23 GB in 60 s when the answers were kept without a
// bound). That is its anonymous RSS: the rest is the executable and
// libraries the kernel maps (33 MiB of a node binary of 42 MB here, all of
// it from the start), the same whatever a peer sends.
func TestMemoryBoundedByDedupBytes(t *testing.T) {
	const bound = 16 // MiB
	checkLoopback(t, "127.0.0.5")
	rs := testredis.Start(t)
	p := launchServe(t, rs.URL(), "127.0.0.5", "127.0.0.5", "--dedup-mib", "16")
	p.waitRegistered(rs.URL())
	client, closeClient := startNode(t, rs.URL(), relay.WithAcks(true))
	defer closeClient()
	stop := make(chan struct{})
	peak := peakRSS(t, p.Pid(), stop)
	arg := strings.Repeat("x", 64<<10)
	d := soak(t, 10*time.Second)
	tick := time.NewTicker(5 * time.Millisecond) // 200/s
	defer tick.Stop()
	var (
		wg     sync.WaitGroup
		ok     atomic.Int64
		failed atomic.Value
	)
	for end := time.Now().Add(d); time.Now().Before(end); <-tick.C {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var got string
			if err := client.Call(ctx, target("127.0.0.5"), "echo", arg, &got); err != nil {
				failed.Store(err)
				return
			}
			if len(got) == len(arg) {
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	close(stop)
	mib := <-peak
	t.Logf("%d calls of 64 KiB with acks in %v; server peak RSS %.1f MiB, of it anonymous %.1f MiB, with a bound of %d MiB (load average %s)",
		ok.Load(), d, mib.rss, mib.anon, bound, procpkg.LoadAverage())
	// The load must have happened: most calls answered (on a loaded
	// machine some time out; that is not what this test is about).
	if want := int64(d/(5*time.Millisecond)) / 2; ok.Load() < want {
		err, _ := failed.Load().(error)
		t.Errorf("%d calls answered, want at least %d (a failure: %v)", ok.Load(), want, err)
	}
	if mib.anon > bound+50 {
		t.Errorf("server peak anonymous RSS %.1f MiB, want at most the bound %d MiB + 50 MiB", mib.anon, bound)
	}
}

// A flood of casts into a handler that blocks: the server takes what its
// handlers and their queue hold and stops reading; the client's queue to
// it fills and Cast returns ErrBackPressure — the client sees it, no cast
// is accepted and then dropped — and the server's RSS stays under 100 MiB
// (150,000 casts took it from 24 to 680 MB when each got a goroutine).
func TestCastFloodIntoBlockedHandler(t *testing.T) {
	checkLoopback(t, "127.0.0.6")
	rs := testredis.Start(t)
	p := launchServe(t, rs.URL(), "127.0.0.6", "127.0.0.6")
	p.waitRegistered(rs.URL())
	client, closeClient := startNode(t, rs.URL())
	defer closeClient()
	stop := make(chan struct{})
	peak := peakRSS(t, p.Pid(), stop)
	var accepted, refused int
	for i := 0; i < 150_000; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		err := client.Cast(ctx, target("127.0.0.6"), "sleep", 3_600_000) // an hour, in ms
		cancel()
		switch {
		case err == nil:
			accepted++
		case errors.Is(err, relay.ErrBackPressure):
			refused++
		default:
			t.Fatalf("cast %d: %v", i, err)
		}
	}
	// The server holds what it took; give it a moment to reach its peak.
	waitFor(t, 10*time.Second, func() error {
		if u, err := procpkg.ReadUsage(p.Pid()); err != nil || u.RSS == 0 {
			return errors.New("no usage yet")
		}
		return nil
	})
	close(stop)
	mib := <-peak
	t.Logf("150000 casts into a blocked handler: %d accepted, %d refused with ErrBackPressure; server peak RSS %.1f MiB, of it anonymous %.1f MiB (load average %s)",
		accepted, refused, mib.rss, mib.anon, procpkg.LoadAverage())
	if refused == 0 {
		t.Error("no cast saw back-pressure: the client was told every cast was accepted")
	}
	if mib.rss > 100 {
		t.Errorf("server peak RSS %.1f MiB, want at most 100 MiB", mib.rss)
	}
	// Its handlers sleep for an hour: SIGTERM would wait out the drain
	// timeout and then run the queue with cancelled contexts.
	p.kill9()
}
