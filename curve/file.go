package curve

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Key files are ZPL text in the layout of czmq's zcert, so that relay
// reads certificates made by czmq (zcert_save) and czmq reads relay's:
//
//	#   ZeroMQ CURVE **Secret** Certificate
//	metadata
//	    name = "alpha"
//	curve
//	    public-key = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"
//	    secret-key = "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs"
//
// The public file is the same without secret-key.

// ErrExists is returned by WriteKeyPair when a key file is already there
// and overwriting was not asked for.
var ErrExists = errors.New("curve: key file exists")

// ErrPermissions is returned for a secret key file that users other than
// its owner may read or write.
var ErrPermissions = errors.New("curve: secret key file readable or writable by others")

// cert is what a key file holds.
type cert struct {
	name           string
	public, secret string
}

// parseCert reads the ZPL of a certificate: the name under metadata and
// the keys under curve. Comment lines start with '#'.
func parseCert(b []byte) (cert, error) {
	var c cert
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for line := 1; sc.Scan(); line++ {
		raw := sc.Text()
		text := strings.TrimSpace(raw)
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		indented := raw[0] == ' ' || raw[0] == '\t'
		name, value, hasValue := strings.Cut(text, "=")
		name = strings.TrimSpace(name)
		if !indented {
			section = name
			continue
		}
		if !hasValue {
			continue // a subsection: not used by certificates
		}
		value = strings.Trim(strings.TrimSpace(value), `"'`)
		switch section + "/" + name {
		case "metadata/name":
			c.name = value
		case "curve/public-key":
			c.public = value
		case "curve/secret-key":
			c.secret = value
		}
	}
	return c, sc.Err()
}

// LoadKeyPair reads a secret key file (written by WriteKeyPair, `node
// keygen`, or czmq). It refuses a file that users other than its owner may
// read or write, with the command that fixes it, and a public key that
// does not belong to the secret key. Its errors never contain key text.
func LoadKeyPair(path string) (KeyPair, error) {
	st, err := os.Stat(path)
	if err != nil {
		return KeyPair{}, fmt.Errorf("curve: secret key file: %w", err)
	}
	if st.IsDir() {
		return KeyPair{}, fmt.Errorf("curve: secret key file %s is a directory", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return KeyPair{}, fmt.Errorf("curve: secret key file: %w", err)
	}
	c, err := parseCert(b)
	if err != nil {
		return KeyPair{}, fmt.Errorf("curve: secret key file %s: %w", path, err)
	}
	if c.secret == "" {
		return KeyPair{}, fmt.Errorf("curve: %s holds no secret-key: give the secret key file (NAME.key of node keygen), not the public one", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return KeyPair{}, fmt.Errorf("%w: %s has mode %04o; run: chmod 600 %s", ErrPermissions, path, perm, path)
	}
	var kp KeyPair
	if kp.Secret, err = ParseKey(c.secret); err != nil {
		return KeyPair{}, fmt.Errorf("curve: %s: secret-key: %w", path, err)
	}
	if kp.Public, err = PublicOf(kp.Secret); err != nil {
		return KeyPair{}, err
	}
	if c.public != "" && c.public != kp.Public.String() {
		return KeyPair{}, fmt.Errorf("curve: %s: its public-key does not belong to its secret-key", path)
	}
	return kp, nil
}

// WriteKeyPair writes base+".key" (the secret key, mode 0600) and
// base+".pub" (the public key, mode 0644) for kp, with name in their
// metadata. It refuses to overwrite either file unless force is true
// (ErrExists), and it writes each file whole or not at all. It returns the
// paths written.
func WriteKeyPair(base, name string, kp KeyPair, force bool) (public, secret string, err error) {
	public, secret = base+".pub", base+".key"
	if !force {
		for _, p := range []string{secret, public} {
			if _, err := os.Lstat(p); err == nil {
				return "", "", fmt.Errorf("%w: %s", ErrExists, p)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return "", "", fmt.Errorf("curve: %w", err)
			}
		}
	}
	stamp := time.Now().UTC().Format("2006-01-02 15:04:05")
	meta := "metadata\n"
	if name != "" {
		meta += fmt.Sprintf("    name = %q\n", name)
	}
	sec := fmt.Sprintf("#   ****  Generated on %s by relay (node keygen)  ****\n"+
		"#   ZeroMQ CURVE **Secret** Certificate\n"+
		"#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.\n\n"+
		"%scurve\n    public-key = \"%s\"\n    secret-key = \"%s\"\n", stamp, meta, kp.Public, kp.Secret)
	pub := fmt.Sprintf("#   ****  Generated on %s by relay (node keygen)  ****\n"+
		"#   ZeroMQ CURVE Public Certificate\n"+
		"#   Put it on the allow-list of the nodes that are to trust this one.\n\n"+
		"%scurve\n    public-key = \"%s\"\n", stamp, meta, kp.Public)
	if err := writeFile(secret, []byte(sec), 0o600); err != nil {
		return "", "", err
	}
	if err := writeFile(public, []byte(pub), 0o644); err != nil {
		return "", "", err
	}
	return public, secret, nil
}

// writeFile writes b to path through a temporary file of mode perm in the
// same directory, renamed over path.
func writeFile(path string, b []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("curve: write %s: %w", path, err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("curve: write %s: %w", path, err)
	}
	if err := f.Chmod(perm); err != nil {
		return fail(err)
	}
	if _, err := f.Write(b); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("curve: write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("curve: write %s: %w", path, err)
	}
	return nil
}
