package relay

import (
	"log/slog"
	"sync"
)

// proxyFailure is what both proxy kinds do when their socket loop fails:
// the loop reports it here; the proxy's renewal goroutine stops renewing
// and unregisters at once (so that nobody sends to a dead proxy while its
// registration would otherwise be kept alive), and Failed tells the owner,
// so that the process can exit and be restarted by its supervisor.
type proxyFailure struct {
	once    sync.Once
	failed  chan error    // receives the failure, once
	stopped chan struct{} // closed at the failure
}

func newProxyFailure() *proxyFailure {
	return &proxyFailure{failed: make(chan error, 1), stopped: make(chan struct{})}
}

// fail is the socket loop's OnFail. Runs in the loop's goroutine.
func (f *proxyFailure) fail(log *slog.Logger, err error) {
	f.once.Do(func() {
		log.Error("proxy socket loop failed; unregistering", "err", err)
		f.failed <- err
		close(f.stopped)
	})
}
