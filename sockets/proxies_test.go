package sockets

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/relay-dev/relay/envelope"
)

// record is an envelope record of kind k whose body is b.
func record(k envelope.Kind, b []byte) []byte {
	h := envelope.Header{Kind: k, ID: envelope.NewMsgID()}
	return h.AppendRecord(nil, b)
}

// bodies collects the bodies of the records a loop received, each payload
// being the last frame of a message. Safe for concurrent use.
type bodies struct {
	mu  sync.Mutex
	got [][]byte
}

func (b *bodies) take(batch Batch) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var fs [][]byte
	for {
		var ok bool
		if fs, ok = batch.Next(fs); !ok {
			return
		}
		_, _ = envelope.Records(fs[len(fs)-1], func(v *envelope.View) bool {
			b.got = append(b.got, bytes.Clone(v.Body()))
			return true
		})
	}
}

// has reports an error until a record with body came.
func (b *bodies) has(body []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, g := range b.got {
		if bytes.Equal(g, body) {
			return nil
		}
	}
	return fmt.Errorf("no record %q among the %d received", body, len(b.got))
}

// routes is a router proxy's table for one server and one client: the
// server says HELLO (a heartbeat) on the backend, the client's records
// go to it, and the server's answers go back to the client.
type routes struct {
	mu             sync.Mutex
	server, client []byte
}

func (r *routes) request(from, _ []byte, v *envelope.View) ([]byte, []byte, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.client = bytes.Clone(from)
	return r.server, v.Record(), r.server != nil
}

func (r *routes) backend(from, _ []byte, v *envelope.View) ([]byte, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if v.Kind() == envelope.KindHeartbeat {
		r.server = bytes.Clone(from)
		return nil, false
	}
	return r.client, r.client != nil
}

// A RouterProxy forwards a client's requests to the server its Request
// names and the server's answers back, over tcp, ipc and inproc. Failed
// by a socket fault, it reports it through OnFail, and a new loop bound
// to the same ports routes again once the server said HELLO to it (tcp
// and ipc, where libzmq connects the DEALERs again).
func TestLoopsRouterProxy(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		zctx := newTestContext(t)
		front, frontEP := tr.listen(t)
		back, backEP := tr.listen(t)
		var rt routes
		fails := make(failures, 1)
		cfg := RouterProxyConfig{Front: front, Back: back, Options: DefaultOptions(),
			Request: rt.request, Backend: rt.backend, OnFail: fails.onFail}
		p, err := StartRouterProxy(zctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Stop)
		if f, b := p.Endpoints(); f == "" || b == "" {
			t.Fatalf("endpoints %q, %q", f, b)
		}

		var atServer, atClient bodies
		server, client := NewPeers(100, 0), NewPeers(100, 0)
		startDealers(t, zctx, server, DealersConfig{OnRecv: func(_ string, b Batch) bool {
			atServer.take(b)
			_, _ = server.TryPush(backEP, Message{Rec: record(envelope.KindReply, []byte("answer"))})
			return false
		}})
		startDealers(t, zctx, client, DealersConfig{OnRecv: func(_ string, b Batch) bool { atClient.take(b); return false }})
		// Until the proxy has the server's HELLO, requests have no route
		// (dropped: no Refuse): say HELLO and ask again until answered.
		exchange := func(body string) {
			t.Helper()
			waitFor(t, 10*time.Second, func() error {
				if err := atClient.has([]byte("answer")); err == nil {
					if err := atServer.has([]byte(body)); err != nil {
						return err
					}
					return nil
				}
				_, _ = server.TryPush(backEP, Message{Rec: record(envelope.KindHeartbeat, nil)})
				_, _ = client.TryPush(frontEP, Message{Rec: record(envelope.KindCall, []byte(body))})
				return errors.New("no answer yet")
			})
		}
		exchange("request")
		if tr.name == "inproc" {
			return // no DEALER connects again to an inproc name bound anew
		}

		fault := errors.New("test: router proxy fault")
		p.InjectFault(fault)
		fails.wait(t, fault, p)
		cfg.Front.Port, cfg.Back.Port = p.Ports()
		p2, err := StartRouterProxy(zctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p2.Stop)
		rt.mu.Lock()
		rt.server, rt.client = nil, nil // a new loop's table starts empty
		rt.mu.Unlock()
		atClient.mu.Lock()
		atClient.got = nil
		atClient.mu.Unlock()
		exchange("after the restart")
	})
}

// A publisher proxy publishes what a publisher's DEALER sends to the
// subscribers of its prefix, through a Subscriber loop, and a local
// publisher (a Subscriber that republishes) passes it on to its own
// subscribers: over tcp, ipc and inproc.
func TestLoopsPublisherProxy(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		zctx := newTestContext(t)
		front, frontEP := tr.listen(t)
		back, backEP := tr.listen(t)
		p, err := StartProxy(zctx, ProxyConfig{Front: front, Back: back, Options: DefaultOptions(),
			Prefix: func(*envelope.View) ([]byte, bool) { return []byte("t."), true },
			OnFail: func(err error) { t.Errorf("proxy failed: %v", err) }})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Stop)

		local, localEP := tr.listen(t)
		var direct, relayed bodies
		subscribe := func(name string, cfg SubscriberConfig, pub string) *Subscriber {
			cfg.Options = DefaultOptions()
			cfg.OnFail = func(err error) { t.Errorf("%s failed: %v", name, err) }
			s, err := StartSubscriber(zctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(s.Stop)
			s.Update([]string{pub}, nil, []string{"t."}, nil)
			return s
		}
		subscribe("subscriber", SubscriberConfig{OnRecv: direct.take}, backEP)
		subscribe("local publisher", SubscriberConfig{Republish: &local}, backEP)
		subscribe("local subscriber", SubscriberConfig{OnRecv: relayed.take}, localEP)

		pub := NewPeers(100, 0)
		startDealers(t, zctx, pub, DealersConfig{})
		// Until the subscriptions reached the proxy, it drops what it gets
		// (no subscriber): publish until both subscribers have one.
		waitFor(t, 10*time.Second, func() error {
			err := errors.Join(direct.has([]byte("news")), relayed.has([]byte("news")))
			if err != nil {
				_, _ = pub.TryPush(frontEP, Message{Rec: record(envelope.KindNotify, []byte("news"))})
			}
			return err
		})
	})
}

// A subscriber with more subscriptions than its high-water mark (a node
// listening in many pools) gets what is published under each of them: a
// SUB sends its subscriptions through its send pipe, and at the default
// mark (32) the ones past it were dropped, on every connect.
func TestSubscriberManyPrefixes(t *testing.T) {
	zctx := newTestContext(t)
	tr := transports()[0] // tcp
	front, frontEP := tr.listen(t)
	back, backEP := tr.listen(t)
	p, err := StartProxy(zctx, ProxyConfig{Front: front, Back: back, Options: DefaultOptions(),
		Prefix: func(v *envelope.View) ([]byte, bool) { return append([]byte("t."), v.Body()...), true },
		OnFail: func(err error) { t.Errorf("proxy failed: %v", err) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	const n = 100 // over DefaultOptions().HWM
	prefixes := make([]string, n)
	for i := range prefixes {
		prefixes[i] = fmt.Sprintf("t.%03d", i)
	}
	var got bodies
	s, err := StartSubscriber(zctx, SubscriberConfig{Options: DefaultOptions(), OnRecv: got.take,
		OnFail: func(err error) { t.Errorf("subscriber failed: %v", err) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	s.Update([]string{backEP}, nil, prefixes, nil)
	pub := NewPeers(1000, 0)
	startDealers(t, zctx, pub, DealersConfig{})
	waitFor(t, 10*time.Second, func() error {
		var missing []error
		for i := range n {
			body := []byte(fmt.Sprintf("%03d", i))
			if err := got.has(body); err != nil {
				missing = append(missing, err)
				_, _ = pub.TryPush(frontEP, Message{Rec: record(envelope.KindNotify, body)})
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("%d of %d prefixes got nothing yet: %v", len(missing), n, missing[0])
		}
		return nil
	})
}
