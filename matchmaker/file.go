package matchmaker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/relay-dev/relay/curve"
)

// FilePollInterval is how often a File matchmaker looks for changes to its
// file.
const FilePollInterval = 250 * time.Millisecond

// File is a static matchmaker read from a JSON file that maps topics to
// "host:port" entries (with CURVE, "host:port;curve=KEY": the server's
// public key, see curve.WithKey), like the oslo.messaging zmq driver's
// MatchMakerRing:
//
//	{
//	  "compute":        ["node1:7001", "node2:7001"],
//	  "nova/scheduler": ["node3:7001"]
//	}
//
// A key is a topic, or "exchange/topic" for a topic of a non-empty exchange.
// A bare target gets every entry of its topic; a directed target (Server
// set) the entries whose host equals the server name. Register and
// Unregister do nothing: the file is the only source of truth, so a node
// that serves a topic must bind the port its entry names (see
// relay.WithPortRange). The file is read again when it changes; a file that
// no longer parses is reported by Err and the last good map stays in use.
type File struct {
	path string
	done chan struct{}
	wg   sync.WaitGroup

	// mu guards the fields below.
	mu    sync.RWMutex
	hosts map[string][]string // key -> sorted host:port entries
	raw   []byte
	err   error // last reload error, nil when the current file parsed

	closing
	changes *changes
}

// NewFile reads path and starts watching it for changes.
func NewFile(path string) (*File, error) {
	raw, hosts, err := readHostsFile(path)
	if err != nil {
		return nil, err
	}
	f := &File{path: path, done: make(chan struct{}), hosts: hosts, raw: raw, changes: newChanges()}
	f.wg.Add(1)
	go f.watch()
	return f, nil
}

// readHostsFile reads and checks a hosts file.
func readHostsFile(path string) ([]byte, map[string][]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("matchmaker: file %s: %w", path, err)
	}
	var parsed map[string][]string
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&parsed); err != nil {
		return nil, nil, fmt.Errorf("matchmaker: file %s: not a JSON object of topic -> [\"host:port\", ...]: %w (see testdata/hosts.json)", path, err)
	}
	hosts := make(map[string][]string, len(parsed))
	for key, entries := range parsed {
		if key == "" || strings.Count(key, "/") > 1 {
			return nil, nil, fmt.Errorf("matchmaker: file %s: key %q: want \"topic\" or \"exchange/topic\"", path, key)
		}
		list := make([]string, 0, len(entries))
		for _, e := range entries {
			hp, _, _, err := curve.SplitMember(e)
			if err != nil {
				return nil, nil, fmt.Errorf("matchmaker: file %s: topic %q: %v", path, key, err)
			}
			if _, port, err := net.SplitHostPort(hp); err != nil || port == "" {
				return nil, nil, fmt.Errorf("matchmaker: file %s: topic %q: entry %q is not host:port (or host:port;curve=KEY)", path, key, hp)
			}
			list = append(list, e)
		}
		sort.Strings(list)
		hosts[key] = list
	}
	return raw, hosts, nil
}

// watch reloads the file when its content changes. Runs in its own
// goroutine until Close.
func (f *File) watch() {
	defer f.wg.Done()
	t := time.NewTicker(FilePollInterval)
	defer t.Stop()
	for {
		select {
		case <-f.done:
			return
		case <-t.C:
			f.reload()
		}
	}
}

func (f *File) reload() {
	raw, err := os.ReadFile(f.path)
	f.mu.RLock()
	same := err == nil && bytes.Equal(raw, f.raw)
	f.mu.RUnlock()
	if same {
		return
	}
	_, hosts, perr := readHostsFile(f.path)
	f.mu.Lock()
	defer f.mu.Unlock()
	if perr != nil {
		f.err = perr
		return
	}
	f.err = nil
	f.raw = raw
	f.hosts = hosts
	f.changes.notify()
}

// Err returns why the file's current content was not taken (nil when it
// was).
func (f *File) Err() error {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.err
}

// Register implements Matchmaker: it does nothing (the file decides).
func (f *File) Register(context.Context, Key, string, time.Duration) error { return f.check() }

// RegisterMany implements Matchmaker: it does nothing (the file decides).
func (f *File) RegisterMany(context.Context, []Entry, time.Duration) error { return f.check() }

// Lost implements Matchmaker: the file is the source of truth and loses
// nothing, so the channel never closes.
func (f *File) Lost() <-chan struct{} { return never }

// Unregister implements Matchmaker: it does nothing (the file decides).
func (f *File) Unregister(context.Context, Key, string) error { return f.check() }

// Lookup implements Matchmaker: "tcp://host:port" for each entry of the
// key's topic (of the directed server only, when Server is set).
func (f *File) Lookup(_ context.Context, key Key) ([]string, error) {
	name := key.Topic
	if key.Exchange != "" {
		name = key.Exchange + "/" + key.Topic
	}
	if err := f.check(); err != nil {
		return nil, err
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	var addrs []string
	for _, e := range f.hosts[name] {
		if key.Server != "" {
			hp, _, _, _ := curve.SplitMember(e)
			if host, _, _ := net.SplitHostPort(hp); host != key.Server {
				continue
			}
		}
		addrs = append(addrs, "tcp://"+e)
	}
	return addrs, nil
}

// Changed implements Matchmaker: it is closed when the file's content
// changes.
func (f *File) Changed() <-chan struct{} { return f.changes.wait() }

// Close stops watching the file. Idempotent.
func (f *File) Close() error {
	if !f.markClosed() {
		return nil
	}
	close(f.done)
	f.wg.Wait()
	return nil
}
