package matchmaker

import (
	"errors"
	"net/url"
	"sort"
	"strings"
)

// redacted replaces a secret in Redact's output.
const redacted = "xxxxx"

// Redact returns rawURL with its secrets replaced by "xxxxx": the password
// of the user information and the value of every query parameter whose
// name says it holds one (sentinel_password, …). Host lists
// (redis+sentinel://h1,h2/…) and URLs that do not parse are handled: when
// the URL is too malformed to tell where a password ends, everything after
// "scheme://" is hidden. Log and show matchmaker URLs only through Redact.
func Redact(rawURL string) string {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		if strings.ContainsAny(rawURL, "@?") {
			return redacted
		}
		return rawURL
	}
	// Take a host list out (url.Parse refuses "h1:1,h2:2") and put it back
	// after parsing.
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority, tail := rest[:end], rest[end:]
	userinfo, hosts := "", authority
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		userinfo, hosts = authority[:at+1], authority[at+1:]
	}
	u, err := url.Parse(scheme + "://" + userinfo + "placeholder" + tail)
	if err != nil || strings.Contains(hosts, "@") || strings.Contains(u.Path, "@") || strings.Contains(u.Fragment, "@") {
		return scheme + "://" + redacted // cannot tell where a secret ends
	}
	q := u.Query()
	for k, vs := range q {
		switch {
		case strings.Contains(k, "@"):
			return scheme + "://" + redacted
		case isSecretParam(k):
			for i := range vs {
				vs[i] = redacted
			}
		default:
			for _, v := range vs {
				if strings.Contains(v, "@") {
					return scheme + "://" + redacted
				}
			}
		}
	}
	var b strings.Builder
	b.WriteString(scheme)
	b.WriteString("://")
	if u.User != nil {
		b.WriteString(url.PathEscape(u.User.Username()))
		if _, has := u.User.Password(); has {
			b.WriteString(":" + redacted)
		}
		b.WriteByte('@')
	}
	b.WriteString(hosts)
	b.WriteString(u.EscapedPath())
	if len(q) > 0 {
		b.WriteByte('?')
		b.WriteString(encodeQuery(q))
	}
	if u.Fragment != "" {
		b.WriteByte('#')
		b.WriteString(u.EscapedFragment())
	}
	return b.String()
}

// isSecretParam tells whether a query parameter holds a secret.
func isSecretParam(name string) bool {
	n := strings.ToLower(name)
	return strings.Contains(n, "pass") || strings.Contains(n, "secret") || strings.Contains(n, "token")
}

// encodeQuery is url.Values.Encode without escaping the redaction marker
// or the slashes of file paths, so that the result stays readable.
func encodeQuery(q url.Values) string {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		for _, v := range q[k] {
			parts = append(parts, url.QueryEscape(k)+"="+strings.ReplaceAll(url.QueryEscape(v), "%2F", "/"))
		}
	}
	return strings.Join(parts, "&")
}

// redactErr returns the reason of a url.Parse error without the URL it
// repeats (which may hold a password).
func redactErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
