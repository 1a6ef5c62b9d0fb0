package matchmaker

import (
	"testing"

	"github.com/redis/go-redis/v9/maintnotifications"
)

// Every kind of deployment gets its go-redis options from the one builder:
// the same retries, protocol, dialer and timeouts, maintenance
// notifications off.
func TestOneOptionsBuilder(t *testing.T) {
	kinds := map[string]RedisOptions{
		"single":   {Addr: "h:1", Username: "u", Password: "p", DB: 2},
		"sentinel": {SentinelAddrs: []string{"s:1"}, MasterName: "m", Username: "u", Password: "p", SentinelPassword: "sp", DB: 2},
		"cluster":  {ClusterAddrs: []string{"c:1", "c:2"}, Username: "u", Password: "p"},
	}
	for kind, o := range kinds {
		if err := o.validate(); err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		u := o.universal()
		type common struct {
			maxRetries, dialerRetries, protocol int
			ctxTimeout, noIdentity, dialer      bool
			user, pw                            string
			maint                               *maintnotifications.Config
		}
		var got common
		switch kind {
		case "single":
			c := u.Simple()
			got = common{c.MaxRetries, c.DialerRetries, c.Protocol, c.ContextTimeoutEnabled, c.DisableIdentity, c.Dialer != nil, c.Username, c.Password, c.MaintNotificationsConfig}
			if c.Addr != "h:1" || c.DB != 2 {
				t.Errorf("single: addr %q db %d", c.Addr, c.DB)
			}
		case "sentinel":
			c := u.Failover()
			// go-redis turns maintenance notifications off for Sentinel
			// clients itself; the field does not exist there.
			got = common{c.MaxRetries, c.DialerRetries, c.Protocol, c.ContextTimeoutEnabled, c.DisableIdentity, c.Dialer != nil, c.Username, c.Password, u.MaintNotificationsConfig}
			if c.MasterName != "m" || c.SentinelPassword != "sp" || c.DB != 2 {
				t.Errorf("sentinel: %+v", c)
			}
		case "cluster":
			c := u.Cluster()
			got = common{c.MaxRetries, c.DialerRetries, c.Protocol, c.ContextTimeoutEnabled, c.DisableIdentity, c.Dialer != nil, c.Username, c.Password, c.MaintNotificationsConfig}
			if len(c.Addrs) != 2 {
				t.Errorf("cluster: addrs %v", c.Addrs)
			}
		}
		if got.maxRetries != -1 || got.dialerRetries != 1 || got.protocol != 2 || !got.ctxTimeout || !got.noIdentity || !got.dialer ||
			got.user != "u" || got.pw != "p" || got.maint == nil || got.maint.Mode != maintnotifications.ModeDisabled {
			t.Errorf("%s: options drifted: %+v", kind, got)
		}
	}
	for name, o := range map[string]RedisOptions{
		"none":           {},
		"two":            {Addr: "h:1", ClusterAddrs: []string{"c:1"}},
		"no master":      {SentinelAddrs: []string{"s:1"}},
		"cluster db":     {ClusterAddrs: []string{"c:1"}, DB: 1},
		"sentinel creds": {Addr: "h:1", SentinelPassword: "x"},
	} {
		if err := o.validate(); err == nil {
			t.Errorf("%s: %+v validated", name, o)
		}
	}
}

// crc16 is Redis Cluster's key hash, and slotTag finds a tag for a slot.
func TestSlots(t *testing.T) {
	if got := crc16([]byte("123456789")); got != 0x31C3 {
		t.Errorf("crc16 check value = %#x, want 0x31c3 (CRC-16/XMODEM)", got)
	}
	// CLUSTER KEYSLOT answers from a real Redis.
	for key, slot := range map[string]uint16{"foo": 12182, "somekey": 11058, "relay:changes": crc16([]byte("relay:changes")) % 16384} {
		if got := crc16([]byte(key)) % 16384; got != slot {
			t.Errorf("slot of %q = %d, want %d", key, got, slot)
		}
	}
	for _, slot := range []int{0, 1, 5460, 5461, 10922, 16383} {
		if got := int(crc16([]byte(slotTag(slot))) % 16384); got != slot {
			t.Errorf("slotTag(%d) = %q hashes to %d", slot, slotTag(slot), got)
		}
	}
}
