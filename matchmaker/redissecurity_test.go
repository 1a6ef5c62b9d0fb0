package matchmaker_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relay-dev/relay/internal/testredis"
	"github.com/relay-dev/relay/matchmaker"
)

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// openLogged opens rawURL with its log written to the returned buffer.
func openLogged(t testing.TB, rawURL string) (*matchmaker.Redis, *syncBuffer) {
	t.Helper()
	var buf syncBuffer
	m, err := matchmaker.Open(rawURL, matchmaker.WithLogger(slog.New(slog.NewTextHandler(&buf, nil))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m.(*matchmaker.Redis), &buf
}

// works registers, looks up and sees a change notice through a and b, two
// clients of the same Redis.
func works(t testing.TB, a, b matchmaker.Matchmaker) {
	t.Helper()
	ctx := ctxTimeout(t, 20*time.Second)
	k := matchmaker.Key{Exchange: "sec", Topic: "t"}
	if err := a.Register(ctx, k, "tcp://a", time.Minute); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Lookup(ctx, k); err != nil || !slices.Equal(got, []string{"tcp://a"}) {
		t.Fatalf("lookup = %v, %v", got, err)
	}
	if _, err := b.(matchmaker.Lister).List(ctx); err != nil {
		t.Fatal(err)
	}
	changeSeen(t, a, b)
}

// changeSeen waits until a registration through a closes b's Changed (b's
// subscription may still be connecting: each try registers a new member).
func changeSeen(t testing.TB, a, b matchmaker.Matchmaker) {
	t.Helper()
	ctx := ctxTimeout(t, 20*time.Second)
	waitFor(t, 10*time.Second, func() error {
		changed := b.Changed()
		k := matchmaker.Key{Exchange: "probe", Topic: "probe"}
		if err := a.Register(ctx, k, "tcp://probe:"+fmt.Sprint(time.Now().UnixNano()), time.Minute); err != nil {
			return err
		}
		select {
		case <-changed:
			return nil
		case <-time.After(500 * time.Millisecond):
			return errors.New("no change notice at the other client")
		}
	})
}

// refused checks that a lookup through rawURL fails with ErrMatchmaker, the
// hint, and none of the secrets.
func refused(t testing.TB, rawURL, hint string, secrets ...string) {
	t.Helper()
	m, logs := openLogged(t, rawURL)
	_, err := m.Lookup(ctxTimeout(t, 5*time.Second), matchmaker.Key{Topic: "t"})
	if !errors.Is(err, matchmaker.ErrMatchmaker) || !strings.Contains(err.Error(), hint) {
		t.Errorf("lookup through %s = %v; want ErrMatchmaker saying %q", matchmaker.Redact(rawURL), err, hint)
	}
	m.Close()
	for _, s := range secrets {
		for what, text := range map[string]string{"error": fmt.Sprint(err), "log": logs.String(), "String()": m.String()} {
			if strings.Contains(text, s) {
				t.Errorf("the %s shows the secret %q: %s", what, s, text)
			}
		}
	}
}

func TestRedisPassword(t *testing.T) {
	verifyNoLeaks(t)
	const pw = "s3cret-pw"
	srv := testredis.Start(t, testredis.WithPassword(pw))
	a, logs := openLogged(t, srv.URL())
	b, _ := openLogged(t, srv.URL())
	works(t, a, b)
	refused(t, "redis://:wrong-pw@"+srv.Addr(), "password in the URL", "wrong-pw")
	refused(t, "redis://"+srv.Addr(), "password in the URL")

	// An outage and a restart log their story without the password.
	waitSubscribers(t, srv, 2)
	srv.Restart()
	waitFor(t, 10*time.Second, func() error {
		if !strings.Contains(logs.String(), "change subscription restored") {
			return errors.New("no restore logged yet")
		}
		return nil
	})
	if strings.Contains(logs.String(), pw) || strings.Contains(a.String(), pw) || strings.Contains(matchmaker.Redact(srv.URL()), pw) {
		t.Errorf("the password shows: log %q, String %q, Redact %q", logs.String(), a.String(), matchmaker.Redact(srv.URL()))
	}
}

// An ACL user limited to relay's keys, channels and commands has all it
// needs; one without the channels is refused with a hint; a wrong password
// too.
func TestRedisACLUser(t *testing.T) {
	verifyNoLeaks(t)
	srv := testredis.Start(t,
		testredis.WithPassword("admin-pw"),
		// The least privilege the hint below names.
		testredis.WithUser("relay on >relay-pw resetkeys ~relay:* resetchannels &relay:* -@all +@read +@write +@scripting +@pubsub +@connection +time"),
		testredis.WithUser("nochannels on >nc-pw resetkeys ~relay:* resetchannels +@all"))
	u := "redis://relay:relay-pw@" + srv.Addr()
	a, _ := openLogged(t, u)
	b, _ := openLogged(t, u)
	if a.String() != "redis "+srv.Addr()+" as user relay" {
		t.Errorf("String() = %q", a.String())
	}
	works(t, a, b)
	waitFor(t, 5*time.Second, func() error { // the loss check's marker, within the user's keys
		if v, err := srv.Do("GET", "relay:marker"); err != nil || v == nil {
			return fmt.Errorf("relay:marker = %v, %v", v, err)
		}
		return nil
	})
	refused(t, "redis://relay:wrong-pw@"+srv.Addr(), "password in the URL", "wrong-pw")

	nc, _ := openLogged(t, "redis://nochannels:nc-pw@"+srv.Addr())
	err := nc.Register(ctxTimeout(t, 5*time.Second), matchmaker.Key{Topic: "t"}, "tcp://a", time.Minute)
	if !errors.Is(err, matchmaker.ErrMatchmaker) || !strings.Contains(err.Error(), "channels &relay:*") {
		t.Errorf("register as a user without channels = %v; want ErrMatchmaker and the hint", err)
	}
}

// rediss:// with the CA and a client certificate from the URL; without
// them, a refusal that says which option is missing.
func TestRedisTLS(t *testing.T) {
	verifyNoLeaks(t)
	srv := testredis.Start(t, testredis.WithTLS())
	c := srv.Certs()
	a, _ := openLogged(t, srv.URL())
	b, _ := openLogged(t, srv.URL())
	if !strings.HasPrefix(a.String(), "rediss ") {
		t.Errorf("String() = %q, want rediss …", a.String())
	}
	works(t, a, b)
	q := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v.Encode()
	}
	refused(t, "rediss://"+srv.Addr()+"?"+q("tls_cert", c.ClientCert, "tls_key", c.ClientKey), "tls_ca")
	refused(t, "rediss://"+srv.Addr()+"?"+q("tls_ca", c.CA), "tls_cert")
	refused(t, "rediss://localhost.invalid:1?"+q("tls_ca", c.CA), "localhost.invalid")
	refused(t, "redis://"+srv.Addr(), srv.Addr())
	refused(t, "rediss://"+srv.Addr()+"?"+q("tls_ca", c.CA, "tls_cert", c.ClientCert, "tls_key", c.ClientKey, "tls_server_name", "other.example"), "tls_server_name")

	for raw, part := range map[string]string{
		"redis://h?tls_ca=/x":                 "rediss://",
		"rediss://h?tls_ca=/nonexistent.pem":  "tls_ca",
		"rediss://h?tls_ca=" + c.ClientKey:    "no PEM certificate",
		"rediss://h?tls_cert=" + c.ClientCert: "go together",
		"rediss://h?tls_ca=":                  "empty",
		"rediss://h?tls_ca=/a&tls_ca=/b":      "2 times",
	} {
		if _, err := matchmaker.ParseRedisURL(raw); !errors.Is(err, matchmaker.ErrBadURL) || !strings.Contains(err.Error(), part) {
			t.Errorf("ParseRedisURL(%q) = %v; want ErrBadURL naming %q", raw, err, part)
		}
	}
}

// Sentinels with their own password in front of data nodes with another.
func TestRedisSentinelAuth(t *testing.T) {
	verifyNoLeaks(t)
	master := testredis.Start(t, testredis.WithPassword("data-pw"))
	s := testredis.StartSentinel(t, master, testredis.WithPassword("sentinel-pw"))
	a, logs := openLogged(t, s.URL())
	b, _ := openLogged(t, s.URL())
	works(t, a, b)
	refused(t, "redis+sentinel://:data-pw@"+s.Addr()+"/"+testredis.MasterName+"?sentinel_password=wrong-pw", "sentinel", "wrong-pw", "data-pw")
	refused(t, "redis+sentinel://:wrong-pw@"+s.Addr()+"/"+testredis.MasterName+"?sentinel_password=sentinel-pw", "password in the URL", "wrong-pw", "sentinel-pw")
	if l := logs.String(); strings.Contains(l, "pw") {
		t.Errorf("log shows a password: %s", l)
	}
}

func TestRedact(t *testing.T) {
	for raw, want := range map[string]string{
		"redis://:pw@h:1/2":                         "redis://:xxxxx@h:1/2",
		"redis://user:pw@h":                         "redis://user:xxxxx@h",
		"redis://user@h":                            "redis://user@h",
		"redis://h:6379":                            "redis://h:6379",
		"redis+sentinel://u:pw@h1:1,h2:2/m/1":       "redis+sentinel://u:xxxxx@h1:1,h2:2/m/1",
		"redis+sentinel://h1/m?sentinel_password=p": "redis+sentinel://h1/m?sentinel_password=xxxxx",
		"rediss://:pw@h?tls_ca=/etc/ca.pem":         "rediss://:xxxxx@h?tls_ca=/etc/ca.pem",
		"redis://:p%40ss@h":                         "redis://:xxxxx@h",
		"redis+cluster://:pw@a:1,b:2":               "redis+cluster://:xxxxx@a:1,b:2",
		"redis://:pa/ss@h":                          "redis://xxxxx",
		"redis://:pa?ss@h":                          "redis://xxxxx",
		"redis://:pa%zz@h":                          "redis://xxxxx",
		"redis://h?x=p@ss":                          "redis://xxxxx",
		"user:pw@h":                                 "xxxxx",
		"memory://default":                          "memory://default",
		"file:///etc/relay/hosts.json":              "file:///etc/relay/hosts.json",
	} {
		if got := matchmaker.Redact(raw); got != want {
			t.Errorf("Redact(%q) = %q, want %q", raw, got, want)
		}
	}
}

// go-redis's own lines reach the logger given to SetRedisLogger, at most
// one a second, the next saying how many were suppressed.
func TestSetRedisLogger(t *testing.T) {
	verifyNoLeaks(t)
	var buf syncBuffer
	matchmaker.SetRedisLogger(slog.New(slog.NewTextHandler(&buf, nil)))
	defer matchmaker.SetRedisLogger(nil)
	srv := testredis.Start(t)
	srv.Stop() // refused: go-redis's pool logs the failed dial
	m := newTestRedis(t, srv.URL())
	if _, err := m.Lookup(ctxTimeout(t, 2*time.Second), matchmaker.Key{Topic: "t"}); err == nil {
		t.Fatal("lookup on a stopped Redis succeeded")
	}
	waitFor(t, 5*time.Second, func() error {
		if l := buf.String(); !strings.Contains(l, "level=WARN msg=go-redis") || !strings.Contains(l, srv.Addr()) {
			return fmt.Errorf("go-redis lines not in the slog logger: %q", l)
		}
		return nil
	})
	// An outage makes one line per dial: a flood of them is throttled.
	start := time.Now()
	waitFor(t, 10*time.Second, func() error {
		for range 20 {
			_, _ = m.Lookup(ctxTimeout(t, time.Second), matchmaker.Key{Topic: "t"})
		}
		l := buf.String()
		if n := strings.Count(l, "msg=go-redis"); int64(n) > 2+int64(time.Since(start)/time.Second) {
			return fmt.Errorf("%d go-redis lines in %v, want at most one a second: %q", n, time.Since(start), l)
		}
		if !strings.Contains(l, "suppressed=") {
			return fmt.Errorf("no line says how many were suppressed yet: %q", l)
		}
		return nil
	})
}
