package relay

import "time"

// Test hooks for the external tests of this package (package relay_test).

// CrashProxy stops a proxy as kill -9 would: its sockets close at once
// (linger 0) and its registration stops being renewed, but it is not
// unregistered, so clients keep finding it until the registration expires.
// Close still releases what is left.
func CrashProxy(p interface{ crash() }) { p.crash() }

func (b *proxyBase) crashWith(stop func()) {
	if b.cancel != nil {
		b.cancel() // stops maintain: no renewal, and no unregistering
		b.wg.Wait()
	}
	stop()
}

func (p *PublisherProxy) crash() {
	p.crashWith(func() {
		if p.proxy != nil {
			p.proxy.Stop()
		}
		if p.sub != nil {
			p.sub.Stop()
		}
	})
}

func (p *RouterProxy) crash() {
	p.crashWith(func() {
		if p.loop != nil {
			p.loop.Stop()
		}
	})
}

// BreakProxy terminates the proxy's ZeroMQ context under its running
// socket loop, which then fails as on any socket error (and closes its
// sockets, which lets the termination finish).
func BreakProxy(p interface{ testBase() *proxyBase }) error {
	return p.testBase().zctx.Close(5 * time.Second)
}

func (b *proxyBase) testBase() *proxyBase { return b }
