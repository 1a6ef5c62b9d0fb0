// Package matchmaker resolves relay targets to the addresses of the nodes that
// serve them.
//
// A Key names what is registered: an exchange and a topic, and for a
// directed target also the server (host) name. Bare-topic keys and directed
// keys are separate entries. A registration maps a key to an address
// ("tcp://127.0.0.1:7001") with a time to live; it stays until unregistered
// or until its TTL runs out without being registered again. Liveness is per
// member: one node's registration expiring never removes another's.
//
// Open selects an implementation by URL:
//
//	memory://NAME               nodes of one process naming the same registry find each other
//	file:///path/hosts.json     a static JSON map of topic -> ["host:port", ...], reloaded
//	                            when it changes (see File and testdata/hosts.json)
//	redis://[[user]:pw@]host:port[/db]                Redis: a sorted set per key, members
//	redis+sentinel://h1:26379,h2:26379/master[/db]    scored by expiry; changes on relay:changes
//	redis+cluster://h1:7000,h2:7000,…                 (rediss… for TLS; see ParseRedisURL)
//
// Using a matchmaker, a node:
//
//	m, err := matchmaker.Open(url, matchmaker.WithLogger(log))  // log only matchmaker.Redact(url)
//	err = m.RegisterMany(ctx, entries, ttl)   // all its keys in one round trip, at start
//	for {                                     // renewals
//		lost := m.Lost()
//		… wait matchmaker.RenewalInterval(ttl), or until <-lost …
//		err = m.RegisterMany(ctx, entries, ttl)
//	}
//	addrs, err := m.Lookup(ctx, key)          // cache it; look up again when <-m.Changed()
//
// Errors the name service causes (unreachable, too slow, refusing) wrap
// ErrMatchmaker: keep using cached routes then. Bad URLs wrap ErrBadURL.
// Passwords never appear in errors, logs or String(); Redact hides them in
// a URL.
//
// Concurrency: every Matchmaker is safe for concurrent use. A Redis
// matchmaker runs two goroutines (change subscription, loss check), joined
// by Close. SetRedisLogger sets go-redis's process-wide logger.
package matchmaker
