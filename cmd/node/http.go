package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"time"
)

// httpFlag is the --http flag of serve, proxy and dashboard.
func httpFlag(fs *flag.FlagSet, what string) *string {
	return fs.String("http", "", "HOST:PORT to serve "+what+" on (HTTP); empty: none")
}

// serveHTTP listens on addr (the --http value) and serves h there until
// the returned stop is called. A bad or busy address is an error naming
// --http.
func (c *cli) serveHTTP(addr string, h http.Handler) (bound string, stop func(), err error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return "", nil, fmt.Errorf("--http %q: want HOST:PORT, such as 127.0.0.1:9090 (port 0: any free port)", addr)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("--http %q: %v", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() { // joined by stop
		defer close(done)
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			c.log.Error("http server failed", "addr", l.Addr().String(), "err", err)
		}
	}()
	c.log.Info("http serving", "addr", l.Addr().String())
	return l.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}, nil
}
