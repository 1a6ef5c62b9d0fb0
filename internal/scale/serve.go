package scale

import (
	"context"
	"log/slog"
	"time"
)

// reportEvery is how often a host process writes its report.
const reportEvery = time.Second

// ServeHost is the body of a host process (`node scale --host-spec FILE`):
// it starts the nodes of spec, writes its HostReport to spec.Report at once
// and every second, begins the load when begin is closed, stops it when
// end is closed (and notes that every call it made has returned: the
// report's LoadStopped), and when ctx ends closes its nodes and writes the
// final report.
func ServeHost(ctx context.Context, spec HostSpec, begin, end <-chan struct{}, log *slog.Logger) error {
	h, err := StartHost(ctx, spec, log)
	if err != nil {
		return err
	}
	write := func() error { return writeJSON(spec.Report, h.Report()) }
	if err := write(); err != nil {
		h.Close()
		return err
	}
	t := time.NewTicker(reportEvery)
	defer t.Stop()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-begin:
			h.BeginLoad()
			begin = nil
		case <-end:
			h.stopLoad()
			h.rec.update(func(r *HostReport) { r.LoadStopped = true })
			if err := write(); err != nil {
				log.Warn("write report", "err", err)
			}
			end = nil
		case <-t.C:
			if err := write(); err != nil {
				log.Warn("write report", "err", err)
			}
		}
	}
	// The final report first: closing a few hundred nodes takes a while
	// (each drains and unregisters), and the figures do not depend on it.
	h.stopLoad()
	h.rec.update(func(r *HostReport) { r.Final = true })
	if err := write(); err != nil {
		return err
	}
	start := time.Now()
	h.Close()
	h.rec.update(func(r *HostReport) { r.CloseTook = time.Since(start) })
	return write()
}
