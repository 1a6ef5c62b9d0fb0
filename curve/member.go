package curve

import (
	"fmt"
	"strings"
)

// MemberKeySep separates a registration (a matchmaker member: an endpoint,
// "POOL|ENDPOINT", "FRONT|BACK|ack", ...) from the public key of the
// CURVE server sockets behind it: "tcp://10.0.0.5:7001;curve=KEY" (see
// docs/PROTOCOL.md §10). Neither ';' nor '=' can end a Z85 key's text
// early: ';' is not a Z85 character.
const MemberKeySep = ";curve="

// WithKey returns member carrying key k.
func WithKey(member string, k Key) string { return member + MemberKeySep + k.String() }

// SplitMember separates a member from the key it carries. keyed is false
// for a member without a key (a plaintext peer); err is set for a key that
// does not parse.
func SplitMember(member string) (rest string, k Key, keyed bool, err error) {
	i := strings.LastIndex(member, MemberKeySep)
	if i < 0 {
		return member, Key{}, false, nil
	}
	k, err = ParseKey(member[i+len(MemberKeySep):])
	if err != nil {
		return member[:i], Key{}, true, fmt.Errorf("registration %q: %w", member[:i], err)
	}
	return member[:i], k, true, nil
}
