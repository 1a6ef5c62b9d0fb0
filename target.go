package relay

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/relay-dev/relay/envelope"
	"github.com/relay-dev/relay/matchmaker"
)

// Target names what a message goes to. A bare target (Topic only) means any
// one server of the topic, chosen round-robin from a random start per node; a directed target (Server
// set) means that server only; Fanout means every server of the topic,
// each exactly once (casts only; Server is then ignored). Namespace and Version select the
// handlers: a server accepts a call whose Namespace equals its own and whose
// Version ("MAJOR.MINOR") has the same major and a minor no greater than its
// own; an empty Version is accepted by any server.
type Target struct {
	Exchange, Topic, Server string
	Fanout                  bool
	Namespace, Version      string
}

// String renders the target for messages, e.g. "compute/host1 ns=x v=1.2".
func (t Target) String() string {
	var b strings.Builder
	if t.Exchange != "" {
		b.WriteString(t.Exchange)
		b.WriteByte(':')
	}
	b.WriteString(t.Topic)
	if t.Server != "" {
		b.WriteByte('/')
		b.WriteString(t.Server)
	}
	if t.Fanout {
		b.WriteString(" fanout")
	}
	if t.Namespace != "" {
		b.WriteString(" ns=" + t.Namespace)
	}
	if t.Version != "" {
		b.WriteString(" v=" + t.Version)
	}
	return b.String()
}

func (t Target) key() matchmaker.Key {
	return matchmaker.Key{Exchange: t.Exchange, Topic: t.Topic, Server: t.Server}
}

func (t Target) envelope() envelope.Target {
	return envelope.Target{Exchange: t.Exchange, Topic: t.Topic, Server: t.Server,
		Namespace: t.Namespace, Version: t.Version, Fanout: t.Fanout}
}

func targetFrom(e envelope.Target) Target {
	return Target{Exchange: e.Exchange, Topic: e.Topic, Server: e.Server,
		Namespace: e.Namespace, Version: e.Version, Fanout: e.Fanout}
}

// check reports a target that cannot be sent to or served.
func (t Target) check() error {
	if t.Topic == "" {
		return fmt.Errorf("%w: empty Topic in %+v", ErrBadTarget, t)
	}
	if t.Version != "" {
		if _, _, err := parseVersion(t.Version); err != nil {
			return fmt.Errorf("%w: %v", ErrBadTarget, err)
		}
	}
	return nil
}

// parseVersion parses "MAJOR" or "MAJOR.MINOR".
func parseVersion(v string) (major, minor int, err error) {
	maj, min, hasMinor := strings.Cut(v, ".")
	major, err = strconv.Atoi(maj)
	if err == nil && hasMinor {
		minor, err = strconv.Atoi(min)
	}
	if err != nil || major < 0 || minor < 0 {
		return 0, 0, fmt.Errorf("version %q is not MAJOR.MINOR", v)
	}
	return major, minor, nil
}

// compatible reports whether a server of version served accepts a call of
// version want: same major, minor no greater. An empty want is always
// accepted; an empty served version counts as "1.0".
func compatible(served, want string) bool {
	if want == "" {
		return true
	}
	if served == "" {
		served = "1.0"
	}
	sMaj, sMin, err1 := parseVersion(served)
	wMaj, wMin, err2 := parseVersion(want)
	return err1 == nil && err2 == nil && sMaj == wMaj && wMin <= sMin
}
