package matchmaker

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// redisSchemes maps each Redis URL scheme to its kind of deployment and
// whether it uses TLS.
var redisSchemes = map[string]struct {
	kind string // "", "sentinel" or "cluster"
	tls  bool
}{
	"redis":           {"", false},
	"rediss":          {"", true},
	"redis+sentinel":  {"sentinel", false},
	"rediss+sentinel": {"sentinel", true},
	"redis+cluster":   {"cluster", false},
	"rediss+cluster":  {"cluster", true},
}

func isRedisScheme(s string) bool { _, ok := redisSchemes[s]; return ok }

// ParseRedisURL parses
//
//	redis://[[user]:password@]host[:port][/db][?query]
//	redis+sentinel://[[user]:password@]h1[:port],h2[:port]/mastername[/db][?query]
//	redis+cluster://[[user]:password@]h1[:port],h2[:port],…[?query]
//
// and the same with rediss, rediss+sentinel and rediss+cluster for TLS. The
// port defaults to 6379 (26379 for Sentinels); db to 0 (a cluster has only
// db 0). The user and password are the data nodes' (an ACL user, or only a
// password for the default user). The query may hold:
//
//	sentinel_user=U, sentinel_password=P   the Sentinels' own credentials
//	tls_ca=/path/ca.pem                      trust this CA (PEM) instead of the system's
//	tls_cert=/path/c.pem&tls_key=/path/k.pem a client certificate, for servers that ask for one
//	tls_server_name=NAME                     the name to verify in the server certificate
//	                                         (default: the host dialled)
//
// The TLS files are read here. Errors wrap ErrBadURL, name the part of the
// URL that is wrong and how to fix it, and never show a password.
func ParseRedisURL(raw string) (RedisOptions, error) {
	var o RedisOptions
	bad := func(format string, args ...any) (RedisOptions, error) {
		return RedisOptions{}, fmt.Errorf("%w %q: "+format, append([]any{ErrBadURL, Redact(raw)}, args...)...)
	}
	schemeName, rest, _ := strings.Cut(raw, "://")
	scheme, ok := redisSchemes[schemeName]
	if !ok {
		return bad("scheme %q is not redis, rediss, redis+sentinel, rediss+sentinel, redis+cluster or rediss+cluster", schemeName)
	}
	// url.Parse rejects a host list such as "h1,h2:26379"; take it out
	// and parse the rest with a placeholder host.
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority := rest[:end]
	userinfo := ""
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		userinfo, authority = authority[:at+1], authority[at+1:]
	}
	u, err := url.Parse(schemeName + "://" + userinfo + "placeholder" + rest[end:])
	if err != nil {
		if userinfo != "" {
			// The reason may quote part of the password.
			return bad("malformed (percent-encode special characters of the user name and password, e.g. %%40 for @)")
		}
		return bad("%v", redactErr(err))
	}
	if u.User != nil {
		o.Username = u.User.Username()
		o.Password, _ = u.User.Password()
	}
	if u.Fragment != "" {
		return bad("fragment %q is not supported", u.Fragment)
	}
	if err := parseRedisQuery(u.Query(), scheme.kind, scheme.tls, &o); err != nil {
		return bad("%v", err)
	}
	if err := o.setPlace(scheme.kind, authority, u.Path); err != nil {
		return bad("%v", err)
	}
	return o, nil
}

// setPlace applies to o the authority (host[:port], or a list of them)
// and the path of a Redis URL of the kind ("", "sentinel" or "cluster").
func (o *RedisOptions) setPlace(kind, authority, path string) error {
	var parts []string
	if p := strings.Trim(path, "/"); p != "" {
		parts = strings.Split(p, "/")
	}
	switch kind {
	case "sentinel":
		addrs, err := redisHosts(authority, "26379")
		if err != nil {
			return fmt.Errorf("sentinel host: %v (want h1:26379,h2:26379)", err)
		}
		o.SentinelAddrs = addrs
		switch {
		case len(parts) == 0:
			return errors.New("path: no master name (want redis+sentinel://h1:26379,h2:26379/mastername)")
		case len(parts) > 2:
			return fmt.Errorf("path %q: want /mastername[/db]", path)
		}
		o.MasterName = parts[0]
		return o.setDB(parts[1:])
	case "cluster":
		addrs, err := redisHosts(authority, "6379")
		if err != nil {
			return fmt.Errorf("cluster host: %v (want h1:6379,h2:6379)", err)
		}
		o.ClusterAddrs = addrs
		if len(parts) > 0 {
			return fmt.Errorf("path %q: a Redis Cluster has no databases and no master name; remove the path", path)
		}
		return nil
	}
	if strings.Contains(authority, ",") {
		return fmt.Errorf("host: %q is a list; one server is redis://host:port, several are redis+sentinel:// or redis+cluster://", authority)
	}
	addrs, err := redisHosts(authority, "6379")
	if err != nil {
		return fmt.Errorf("host: %v", err)
	}
	o.Addr = addrs[0]
	if len(parts) > 1 {
		return fmt.Errorf("path %q: want at most /db", path)
	}
	return o.setDB(parts)
}

// setDB sets o.DB from the path's part after the master name, if any.
func (o *RedisOptions) setDB(parts []string) error {
	if len(parts) == 0 {
		return nil
	}
	db, err := strconv.Atoi(parts[0])
	if err != nil || db < 0 {
		return fmt.Errorf("database %q in the path is not a number >= 0", parts[0])
	}
	o.DB = db
	return nil
}

// redisHosts validates a comma-separated list of host[:port], adding the
// default port where it is missing.
func redisHosts(authority, defaultPort string) ([]string, error) {
	if authority == "" {
		return nil, errors.New("no address (want host:port)")
	}
	var addrs []string
	for _, h := range strings.Split(authority, ",") {
		addr, err := hostPort(h, defaultPort)
		if err != nil {
			return nil, err
		}
		addrs = append(addrs, addr)
	}
	return addrs, nil
}

// parseRedisQuery applies the query parameters of a Redis URL to o.
func parseRedisQuery(q url.Values, kind string, useTLS bool, o *RedisOptions) error {
	one := func(name string) (string, error) {
		vs := q[name]
		delete(q, name)
		switch {
		case len(vs) > 1:
			return "", fmt.Errorf("query parameter %s is given %d times", name, len(vs))
		case len(vs) == 1 && vs[0] == "":
			return "", fmt.Errorf("query parameter %s is empty", name)
		case len(vs) == 1:
			return vs[0], nil
		}
		return "", nil
	}
	var err error
	get := func(name string) string {
		v, e := one(name)
		if err == nil {
			err = e
		}
		return v
	}
	o.SentinelUsername = get("sentinel_user")
	o.SentinelPassword = get("sentinel_password")
	ca, cert, key, serverName := get("tls_ca"), get("tls_cert"), get("tls_key"), get("tls_server_name")
	if err != nil {
		return err
	}
	if len(q) > 0 {
		names := make([]string, 0, len(q))
		for k := range q {
			names = append(names, k)
		}
		return fmt.Errorf("unknown query parameter(s) %q (supported: sentinel_user, sentinel_password, tls_ca, tls_cert, tls_key, tls_server_name)", names)
	}
	if (o.SentinelUsername != "" || o.SentinelPassword != "") && kind != "sentinel" {
		return errors.New("sentinel_user and sentinel_password need redis+sentinel://")
	}
	if !useTLS {
		if ca != "" || cert != "" || key != "" || serverName != "" {
			return errors.New("tls_ca, tls_cert, tls_key and tls_server_name need TLS: use rediss://, rediss+sentinel:// or rediss+cluster://")
		}
		return nil
	}
	o.TLS = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return fmt.Errorf("tls_ca: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("tls_ca: %s holds no PEM certificate", ca)
		}
		o.TLS.RootCAs = pool
	}
	if (cert == "") != (key == "") {
		return errors.New("tls_cert and tls_key go together: give both or neither")
	}
	if cert != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return fmt.Errorf("tls_cert/tls_key: %v", err)
		}
		o.TLS.Certificates = []tls.Certificate{pair}
	}
	return nil
}

// hostPort validates host[:port], adding the default port when it is missing.
func hostPort(h, defaultPort string) (string, error) {
	if h == "" {
		return "", errors.New("empty")
	}
	host, port, err := net.SplitHostPort(h)
	if err != nil {
		// No port (or a bare IPv6 address in brackets).
		host, port = strings.Trim(h, "[]"), defaultPort
		if strings.ContainsAny(host, ":[]") && !strings.HasPrefix(h, "[") {
			return "", fmt.Errorf("%q: %v", h, err)
		}
	}
	if host == "" {
		return "", fmt.Errorf("%q: no host name", h)
	}
	if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		return "", fmt.Errorf("%q: port %q is not a number from 1 to 65535", h, port)
	}
	return net.JoinHostPort(host, port), nil
}
