package relay

import "errors"

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

func (p *PublisherProxy) crash() { p.crashWith(p.stopLoops) }

func (p *RouterProxy) crash() { p.crashWith(p.stopLoops) }

// BreakProxy makes the proxy's socket loop fail: it stops (sockets closed
// at once) and reports the failure to the proxy, as a loop that hit a
// socket error does (OnFail).
func BreakProxy(p interface {
	stopLoops()
	testBase() *proxyBase
}) {
	p.stopLoops()
	p.testBase().fail(errors.New("test: socket loop failed"))
}

func (b *proxyBase) testBase() *proxyBase { return b }

func (p *PublisherProxy) stopLoops() {
	if p.proxy != nil {
		p.proxy.Stop()
	}
	if p.sub != nil {
		p.sub.Stop()
	}
}

func (p *RouterProxy) stopLoops() {
	if p.loop != nil {
		p.loop.Stop()
	}
}
