package curve

import (
	"bufio"
	"bytes"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// AllowList is a set of trusted public keys, each with a name (which may be
// empty). A node admits as clients, and trusts as servers, the keys on its
// allow-list. An AllowList is immutable; a nil one holds no key.
type AllowList struct {
	byKey map[Key]string
}

// NewAllowList makes an allow-list of keys with their names.
func NewAllowList(keys map[Key]string) *AllowList {
	return &AllowList{byKey: maps.Clone(keys)}
}

// Name returns the name of k and whether k is on the list.
func (a *AllowList) Name(k Key) (string, bool) {
	if a == nil {
		return "", false
	}
	name, ok := a.byKey[k]
	return name, ok
}

// Len returns the number of keys.
func (a *AllowList) Len() int {
	if a == nil {
		return 0
	}
	return len(a.byKey)
}

// Equal reports whether a and b hold the same keys with the same names.
func (a *AllowList) Equal(b *AllowList) bool {
	var am, bm map[Key]string
	if a != nil {
		am = a.byKey
	}
	if b != nil {
		bm = b.byKey
	}
	return maps.Equal(am, bm)
}

// LoadAllowList reads an allow-list from path:
//
//   - a directory: every public certificate in it (NAME.pub of node
//     keygen, or czmq's certificates); files ending in .key or _secret
//     (secret keys) and hidden files are skipped;
//   - a certificate file: its one key, named by its metadata or its file
//     name;
//   - any other file: one key per line, "KEY [NAME]", '#' starts a comment
//     line.
//
// An empty list is not an error (it admits nobody). A file that holds a
// secret key is refused: an allow-list takes public keys only.
func LoadAllowList(path string) (*AllowList, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("curve: allow-list: %w", err)
	}
	keys := map[Key]string{}
	if !st.IsDir() {
		if err := readAllowFile(path, keys); err != nil {
			return nil, err
		}
		return NewAllowList(keys), nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, fmt.Errorf("curve: allow-list: %w", err)
	}
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, ".") || strings.HasSuffix(n, ".key") || strings.HasSuffix(n, "_secret") || !e.Type().IsRegular() {
			continue
		}
		if err := readAllowFile(filepath.Join(path, n), keys); err != nil {
			return nil, err
		}
	}
	return NewAllowList(keys), nil
}

// readAllowFile adds the keys of one file to keys.
func readAllowFile(path string, keys map[Key]string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("curve: allow-list: %w", err)
	}
	if bytes.Contains(b, []byte("public-key")) || bytes.Contains(b, []byte("secret-key")) {
		c, err := parseCert(b)
		if err != nil {
			return fmt.Errorf("curve: allow-list %s: %w", path, err)
		}
		if c.secret != "" {
			return fmt.Errorf("curve: allow-list %s holds a secret key: give the public certificate (NAME.pub), and keep the secret one private", path)
		}
		k, err := ParseKey(c.public)
		if err != nil {
			return fmt.Errorf("curve: allow-list %s: public-key: %w", path, err)
		}
		name := c.name
		if name == "" {
			name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
		}
		keys[k] = name
		return nil
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.Fields(text)
		k, err := ParseKey(fields[0])
		if err != nil || len(fields) > 2 {
			return fmt.Errorf("curve: allow-list %s line %d: want a public key, 40 characters of Z85, and an optional name (KEY [NAME])", path, line)
		}
		name := ""
		if len(fields) == 2 {
			name = fields[1]
		}
		keys[k] = name
	}
	return sc.Err()
}

// Names returns the list's names and keys, "NAME KEY" sorted, for logs.
func (a *AllowList) Names() []string {
	if a == nil {
		return nil
	}
	out := make([]string, 0, len(a.byKey))
	for k, name := range a.byKey {
		out = append(out, strings.TrimSpace(name+" "+k.String()))
	}
	sort.Strings(out)
	return out
}

// Rotating is an allow-list that can be replaced while it is in use: read
// from a path and read again on Reload (rotation without a restart), or
// set in memory. Safe for concurrent use.
type Rotating struct {
	path string
	cur  atomic.Pointer[AllowList]

	// mu serializes reloads.
	mu sync.Mutex
}

// OpenAllowList reads the allow-list at path (see LoadAllowList); Reload
// reads it again.
func OpenAllowList(path string) (*Rotating, error) {
	a, err := LoadAllowList(path)
	if err != nil {
		return nil, err
	}
	r := &Rotating{path: path}
	r.cur.Store(a)
	return r, nil
}

// Fixed returns a Rotating that holds a, replaced only by Set.
func Fixed(a *AllowList) *Rotating {
	r := &Rotating{}
	r.cur.Store(a)
	return r
}

// Path returns where the allow-list is read from ("" when it is in memory).
func (r *Rotating) Path() string { return r.path }

// Current returns the allow-list in use.
func (r *Rotating) Current() *AllowList { return r.cur.Load() }

// Set replaces the allow-list.
func (r *Rotating) Set(a *AllowList) { r.cur.Store(a) }

// Reload reads the allow-list again from its path, and takes it if it
// differs; it reports whether it changed. On an error the list in use
// stays. A Rotating without a path does nothing.
func (r *Rotating) Reload() (changed bool, err error) {
	if r.path == "" {
		return false, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	a, err := LoadAllowList(r.path)
	if err != nil {
		return false, err
	}
	if a.Equal(r.cur.Load()) {
		return false, nil
	}
	r.cur.Store(a)
	return true, nil
}
