package matchmaker_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relay-dev/relay/internal/testutil"

	"github.com/relay-dev/relay/matchmaker"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	// Write then rename, as editors and config tools do, so the watcher
	// never reads half a file.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestFileLookup(t *testing.T) {
	m, err := matchmaker.Open("file://" + mustAbs(t, "../testdata/hosts.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	for _, tc := range []struct {
		key  matchmaker.Key
		want []string
	}{
		{matchmaker.Key{Topic: "compute"}, []string{"tcp://127.0.0.2:7001", "tcp://127.0.0.3:7001", "tcp://127.0.0.4:7001"}},
		{matchmaker.Key{Topic: "compute", Server: "127.0.0.3"}, []string{"tcp://127.0.0.3:7001"}},
		{matchmaker.Key{Exchange: "nova", Topic: "scheduler"}, []string{"tcp://127.0.0.2:7002"}},
		{matchmaker.Key{Topic: "scheduler"}, nil},
		{matchmaker.Key{Topic: "compute", Server: "elsewhere"}, nil},
	} {
		got, err := m.Lookup(ctx, tc.key)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("Lookup(%v) = %v, %v; want %v", tc.key, got, err, tc.want)
		}
	}
	// Registrations do not change a static file's answer.
	if err := m.Register(ctx, matchmaker.Key{Topic: "other"}, "tcp://127.0.0.9:1", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := m.RegisterMany(ctx, []matchmaker.Entry{{Key: matchmaker.Key{Topic: "other"}, Addr: "tcp://127.0.0.9:1"}}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if got, _ := m.Lookup(ctx, matchmaker.Key{Topic: "other"}); len(got) != 0 {
		t.Errorf("Register changed a file matchmaker: %v", got)
	}
	select {
	case <-m.Lost():
		t.Error("Lost closed for a static file")
	default:
	}
}

// Edits to the file are picked up without restart; an edit that does not
// parse is reported and the last good map stays.
func TestFileReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hosts.json")
	writeFile(t, path, `{"compute": ["127.0.0.2:7001"]}`)
	f, err := matchmaker.NewFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx := context.Background()
	key := matchmaker.Key{Topic: "compute"}

	changed := f.Changed()
	writeFile(t, path, `{"compute": ["127.0.0.2:7001", "127.0.0.3:7001"]}`)
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("Changed not closed within 5s of an edit")
	}
	if got, _ := f.Lookup(ctx, key); !slices.Equal(got, []string{"tcp://127.0.0.2:7001", "tcp://127.0.0.3:7001"}) {
		t.Fatalf("after edit: %v", got)
	}

	writeFile(t, path, `{"compute": ["no-port-here"]}`)
	testutil.WaitFor(t, 5*time.Second, func() error {
		if f.Err() == nil {
			return errors.New("a bad edit is not reported by Err yet")
		}
		return nil
	})
	if !strings.Contains(f.Err().Error(), "no-port-here") {
		t.Errorf("Err() = %v, want it to name the bad entry", f.Err())
	}
	if got, _ := f.Lookup(ctx, key); len(got) != 2 {
		t.Errorf("after a bad edit the last good map should stay: %v", got)
	}
}

func TestFileBad(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"list.json":   `["compute"]`,
		"noport.json": `{"compute": ["node1"]}`,
		"key.json":    `{"a/b/c": ["node1:1"]}`,
		"curve.json":  `{"compute": ["node1:1;curve=short"]}`,
	} {
		path := filepath.Join(dir, name)
		writeFile(t, path, content)
		if _, err := matchmaker.NewFile(path); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: NewFile = %v, want an error naming the file", name, err)
		}
	}
	if _, err := matchmaker.NewFile(filepath.Join(dir, "missing.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := matchmaker.Open("file://relative/hosts.json"); !errors.Is(err, matchmaker.ErrBadURL) {
		t.Errorf("relative file URL: %v, want ErrBadURL", err)
	}
}

// An entry may carry its server's CURVE key; lookups return it with the
// endpoint, and directed lookups still match the host.
func TestFileCurveKeys(t *testing.T) {
	const key = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
	path := filepath.Join(t.TempDir(), "hosts.json")
	writeFile(t, path, `{"compute": ["127.0.0.2:7001;curve=`+key+`", "127.0.0.3:7001"]}`)
	m, err := matchmaker.NewFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	got, err := m.Lookup(context.Background(), matchmaker.Key{Topic: "compute", Server: "127.0.0.2"})
	if err != nil || !slices.Equal(got, []string{"tcp://127.0.0.2:7001;curve=" + key}) {
		t.Fatalf("Lookup = %q, %v", got, err)
	}
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
