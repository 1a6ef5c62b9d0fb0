package curve

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The key pairs of ZeroMQ's CURVE test vectors (zmq_curve(7), RFC 26).
const (
	serverPublic = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
	serverSecret = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"
	clientPublic = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"
	clientSecret = "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs"
)

func TestZ85(t *testing.T) {
	// The example of ZeroMQ RFC 32.
	in := []byte{0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B}
	if got := Z85Encode(in); got != "HelloWorld" {
		t.Fatalf("Z85Encode = %q, want HelloWorld", got)
	}
	out, err := Z85Decode("HelloWorld")
	if err != nil || string(out) != string(in) {
		t.Fatalf("Z85Decode = %x, %v", out, err)
	}
	for _, bad := range []string{"Hell", "Hell\"World", "HelloWorl", "#####"} {
		if _, err := Z85Decode(bad); !errors.Is(err, ErrZ85) {
			t.Errorf("Z85Decode(%q) = %v, want ErrZ85", bad, err)
		}
	}
}

func TestPublicOf(t *testing.T) {
	for _, v := range [][2]string{{serverSecret, serverPublic}, {clientSecret, clientPublic}} {
		sec, err := ParseKey(v[0])
		if err != nil {
			t.Fatal(err)
		}
		pub, err := PublicOf(sec)
		if err != nil || pub.String() != v[1] {
			t.Fatalf("PublicOf = %s, %v; want %s", pub, err, v[1])
		}
	}
	kp, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	if pub, _ := PublicOf(kp.Secret); pub != kp.Public || kp.Public == kp.Secret || kp.Public.IsZero() {
		t.Fatal("Generate: public key does not belong to the secret key")
	}
}

func TestParseKeyHidesText(t *testing.T) {
	_, err := ParseKey(serverSecret[:39])
	if err == nil || strings.Contains(err.Error(), serverSecret[:10]) {
		t.Fatalf("ParseKey of a short key: %v (must fail without quoting the text)", err)
	}
}

func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "alpha")
	kp, _ := Generate()
	pub, sec, err := WriteKeyPair(base, "alpha", kp, false)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(sec); st.Mode().Perm() != 0o600 {
		t.Fatalf("secret key file mode %v, want 0600", st.Mode().Perm())
	}
	if st, _ := os.Stat(pub); st.Mode().Perm() != 0o644 {
		t.Fatalf("public key file mode %v, want 0644", st.Mode().Perm())
	}
	if b, _ := os.ReadFile(pub); strings.Contains(string(b), kp.Secret.String()) {
		t.Fatal("the public file holds the secret key")
	}
	got, err := LoadKeyPair(sec)
	if err != nil || got != kp {
		t.Fatalf("LoadKeyPair = %v (equal %v)", err, got == kp)
	}
	// No overwrite without force; force writes a new pair.
	if _, _, err := WriteKeyPair(base, "alpha", kp, false); !errors.Is(err, ErrExists) {
		t.Fatalf("second WriteKeyPair = %v, want ErrExists", err)
	}
	kp2, _ := Generate()
	if _, _, err := WriteKeyPair(base, "alpha", kp2, true); err != nil {
		t.Fatal(err)
	}
	if got, _ := LoadKeyPair(sec); got != kp2 {
		t.Fatal("force did not overwrite")
	}
	// Loose permissions are refused with the fix, and without the key.
	if err := os.Chmod(sec, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = LoadKeyPair(sec)
	if !errors.Is(err, ErrPermissions) || !strings.Contains(err.Error(), "chmod 600 "+sec) || strings.Contains(err.Error(), kp2.Secret.String()) {
		t.Fatalf("LoadKeyPair of a 0644 file = %v", err)
	}
	// The public file is not a secret key file.
	os.Chmod(pub, 0o600)
	if _, err := LoadKeyPair(pub); err == nil || !strings.Contains(err.Error(), "no secret-key") {
		t.Fatalf("LoadKeyPair of the public file = %v", err)
	}
}

// A czmq certificate (zcert_save) reads as relay's.
func TestCzmqCert(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "server_secret")
	cert := "#   ****  Generated on 2024-01-02 03:04:05 by CZMQ  ****\n" +
		"#   ZeroMQ CURVE **Secret** Certificate\n\nmetadata\ncurve\n" +
		"    public-key = \"" + serverPublic + "\"\n    secret-key = \"" + serverSecret + "\"\n"
	os.WriteFile(p, []byte(cert), 0o600)
	kp, err := LoadKeyPair(p)
	if err != nil || kp.Public.String() != serverPublic {
		t.Fatalf("LoadKeyPair(czmq) = %s, %v", kp.Public, err)
	}
	// A mismatched public key is refused.
	bad := strings.Replace(cert, serverPublic, clientPublic, 1)
	os.WriteFile(p, []byte(bad), 0o600)
	if _, err := LoadKeyPair(p); err == nil || !strings.Contains(err.Error(), "does not belong") {
		t.Fatalf("mismatched pair: %v", err)
	}
}

func TestAllowList(t *testing.T) {
	dir := t.TempDir()
	a, _ := Generate()
	b, _ := Generate()
	WriteKeyPair(filepath.Join(dir, "a"), "alice", a, false)
	WriteKeyPair(filepath.Join(dir, "b"), "", b, false)
	os.WriteFile(filepath.Join(dir, ".hidden"), []byte("junk"), 0o644)
	l, err := LoadAllowList(dir)
	if err != nil {
		t.Fatal(err)
	}
	if l.Len() != 2 {
		t.Fatalf("dir allow-list has %d keys, want 2 (%v)", l.Len(), l.Names())
	}
	if n, ok := l.Name(a.Public); !ok || n != "alice" {
		t.Fatalf("Name(a) = %q, %v", n, ok)
	}
	if k, ok := KeyOfZ85([]byte(b.Public.String())); !ok || k != b.Public {
		t.Fatal("KeyOfZ85 does not parse what String wrote")
	}
	if n, ok := l.Name(b.Public); !ok || n != "b" {
		t.Fatalf("Name(b) = %q, %v (named by its file)", n, ok)
	}
	if _, ok := l.Name(a.Secret); ok {
		t.Fatal("a secret key is on the list")
	}
	// A list file, with comments and names.
	list := filepath.Join(dir, "list.txt")
	os.WriteFile(list, []byte("# clients\n"+clientPublic+" web-1\n\n"+serverPublic+"\n"), 0o644)
	l, err = LoadAllowList(list)
	if err != nil || l.Len() != 2 {
		t.Fatalf("list file: %v, %d keys", err, l.Len())
	}
	ck, _ := ParseKey(clientPublic)
	if n, _ := l.Name(ck); n != "web-1" {
		t.Fatalf("name %q, want web-1", n)
	}
	// A bad line names the line and quotes no key.
	os.WriteFile(list, []byte(clientPublic+"\n"+clientSecret[:30]+"\n"), 0o644)
	if _, err := LoadAllowList(list); err == nil || !strings.Contains(err.Error(), "line 2") || strings.Contains(err.Error(), clientSecret[:30]) {
		t.Fatalf("bad line: %v", err)
	}
	// A secret key file given as an allow-list is refused.
	if _, err := LoadAllowList(filepath.Join(dir, "a.key")); err == nil || !strings.Contains(err.Error(), "secret key") {
		t.Fatalf("secret file as allow-list: %v", err)
	}
	// A single certificate file.
	l, err = LoadAllowList(filepath.Join(dir, "a.pub"))
	if err != nil || l.Len() != 1 {
		t.Fatalf("certificate file: %v", err)
	}
}

func TestRotating(t *testing.T) {
	dir := t.TempDir()
	a, _ := Generate()
	b, _ := Generate()
	WriteKeyPair(filepath.Join(dir, "a"), "a", a, false)
	r, err := OpenAllowList(dir)
	if err != nil {
		t.Fatal(err)
	}
	if changed, err := r.Reload(); changed || err != nil {
		t.Fatalf("Reload without a change = %v, %v", changed, err)
	}
	WriteKeyPair(filepath.Join(dir, "b"), "b", b, false)
	if changed, err := r.Reload(); !changed || err != nil {
		t.Fatalf("Reload after a new key = %v, %v", changed, err)
	}
	if _, ok := r.Current().Name(b.Public); !ok {
		t.Fatal("new key not taken")
	}
	os.WriteFile(filepath.Join(dir, "c.pub"), []byte("public-key = broken"), 0o644)
	if _, err := r.Reload(); err == nil {
		t.Fatal("a broken file reloaded without error")
	}
	if _, ok := r.Current().Name(b.Public); !ok {
		t.Fatal("a failed reload dropped the list in use")
	}
}

func TestSplitMember(t *testing.T) {
	k, _ := ParseKey(serverPublic)
	for _, m := range []string{"tcp://127.0.0.1:7001", "pool|tcp://h:1", "tcp://f:1|tcp://b:2|ack", "@alpha"} {
		rest, got, keyed, err := SplitMember(WithKey(m, k))
		if err != nil || !keyed || got != k || rest != m {
			t.Fatalf("SplitMember(WithKey(%q)) = %q, %v, %v, %v", m, rest, got, keyed, err)
		}
		if rest, _, keyed, err := SplitMember(m); rest != m || keyed || err != nil {
			t.Fatalf("SplitMember(%q) = %q, %v, %v", m, rest, keyed, err)
		}
	}
	if _, _, keyed, err := SplitMember("tcp://h:1;curve=short"); !keyed || err == nil {
		t.Fatal("a bad key parsed")
	}
}
