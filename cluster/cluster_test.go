package cluster

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/relay-dev/relay/matchmaker"
)

// TestRead checks the View of a set of registrations: nodes, topics and
// pools grouped and in order, proxies listed, bare entries of a hosts file
// taken as nodes named by their host, and nil lists where there is nothing.
func TestRead(t *testing.T) {
	exp := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	reg := func(ex, topic, server, addr string, d time.Duration) matchmaker.Registration {
		return matchmaker.Registration{Key: matchmaker.Key{Exchange: ex, Topic: topic, Server: server}, Addr: addr, Expires: exp.Add(d)}
	}
	regs := []matchmaker.Registration{
		reg("", "compute", "", "tcp://10.0.0.2:7001", 0),
		reg("", "compute", "beta", "tcp://10.0.0.2:7001", time.Second),
		reg("", "compute", "", "tcp://10.0.0.1:7001", 0),
		reg("", "compute", "alpha", "tcp://10.0.0.1:7001", 2*time.Second),
		reg("calc", "billing", "alpha", "tcp://10.0.0.1:7001", -time.Second),
		reg("", "compute", "alpha", "tcp://10.0.0.9:7001", 0),
		{Key: matchmaker.Key{Topic: "static"}, Addr: "10.0.0.5:7002"},
		reg("$notify", "billing.info", "", "workers|tcp://10.0.0.8:1", 0),
		reg("$notify", "billing.info", "", "workers|tcp://10.0.0.7:1", 0),
		reg("$notify", "audit", "", "solo|tcp://10.0.0.7:1", 0),
		reg("$relay", "routers", "", "r2", 0),
		reg("$relay", "routers", "", "r1", 0),
		reg("$relay", "publishers", "", "p1", 0),
		reg("$relay", "local-publishers", "h1", "lp1", 0),
	}
	v := Read(regs)
	v.At = time.Time{}
	got, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"at":"0001-01-01T00:00:00Z",` +
		`"topics":[{"topic":"compute","servers":["alpha","beta"]},{"topic":"static","servers":["10.0.0.5"]},{"exchange":"calc","topic":"billing","servers":["alpha"]}],` +
		`"nodes":[{"name":"10.0.0.5","addr":"10.0.0.5:7002","targets":["/static"],"expires":"0001-01-01T00:00:00Z"},` +
		`{"name":"alpha","addr":"tcp://10.0.0.1:7001","targets":["/compute","calc/billing"],"expires":"2025-12-31T23:59:59Z"},` +
		`{"name":"alpha","addr":"tcp://10.0.0.9:7001","targets":["/compute"],"expires":"2026-01-01T00:00:00Z"},` +
		`{"name":"beta","addr":"tcp://10.0.0.2:7001","targets":["/compute"],"expires":"2026-01-01T00:00:01Z"}],` +
		`"pools":[{"topic":"audit","pool":"solo","members":["tcp://10.0.0.7:1"]},{"topic":"billing.info","pool":"workers","members":["tcp://10.0.0.7:1","tcp://10.0.0.8:1"]}],` +
		`"routers":["r1","r2"],"publishers":["p1"],"local_publishers":[{"host":"h1","addr":"lp1"}]}`
	if string(got) != want {
		t.Errorf("Read:\n got %s\nwant %s", got, want)
	}
	e := Read(nil)
	if e.Nodes != nil || e.Topics != nil || e.Pools != nil || e.Routers != nil {
		t.Errorf("Read(nil) = %+v, want nil lists", e)
	}
}
