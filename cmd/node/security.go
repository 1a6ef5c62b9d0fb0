package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/relay-dev/relay"
	"github.com/relay-dev/relay/curve"
)

// curveNote goes into the help of the commands that take the CURVE flags.
const curveNote = `Security: with --curve-key (this node's secret key file, from node keygen)
and --curve-allow (a file of public keys, or a directory of NAME.pub files)
every socket uses ZMTP CURVE: a server admits only the keys on its
allow-list, a client uses only servers and proxies that registered a key on
its own, and a peer without keys is refused (see docs/SECURITY.md). The
allow-list is read again when it changes, and on SIGHUP.
`

// curveFlags are the CURVE flags of every command that starts a node or a
// proxy.
type curveFlags struct {
	key, allow string
}

func (f *curveFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.key, "curve-key", "", "secret key FILE of this node (node keygen writes one; mode 0600): turns CURVE on, with --curve-allow")
	fs.StringVar(&f.allow, "curve-allow", "", "allow-list FILE or DIR: the public keys this node admits as clients and trusts as servers and proxies (re-read on change and on SIGHUP)")
}

// on reports whether CURVE was asked for.
func (f *curveFlags) on() bool { return f.key != "" || f.allow != "" }

// check reads the key file and the allow-list now, so that a mistake is
// reported in terms of the flag that holds it, not when the node starts.
func (f *curveFlags) check() error {
	switch {
	case !f.on():
		return nil
	case f.key == "":
		return errors.New("--curve-allow needs --curve-key (this node's secret key file, from node keygen)")
	case f.allow == "":
		return errors.New("--curve-key needs --curve-allow (the public keys of the peers to trust: a file, or a directory of NAME.pub files)")
	}
	if _, err := curve.LoadKeyPair(f.key); err != nil {
		return fmt.Errorf("--curve-key %s: %v", f.key, err)
	}
	if _, err := curve.LoadAllowList(f.allow); err != nil {
		return fmt.Errorf("--curve-allow %s: %v", f.allow, err)
	}
	return nil
}

// options returns the node option of the flags (none when CURVE is off).
func (f *curveFlags) options() []relay.Option {
	if !f.on() {
		return nil
	}
	return []relay.Option{relay.WithCurve(f.key, f.allow)}
}

// reloadOnHUP makes SIGHUP reload the allow-list with reload, when CURVE is
// on (otherwise SIGHUP keeps its default: it ends the process). stop ends
// the handling.
func (f *curveFlags) reloadOnHUP(log *slog.Logger, reload func() error) (stop func()) {
	if !f.on() {
		return func() {}
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() { // ends at stop
		defer close(finished)
		for {
			select {
			case <-done:
				return
			case <-hup:
				if err := reload(); err != nil {
					log.Error("SIGHUP: allow-list not reloaded; the previous one stays in use", "err", err)
				} else {
					log.Info("SIGHUP: allow-list read again", "path", f.allow)
				}
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		close(done)
		<-finished
	}
}

func keygenCommand() command {
	return command{
		name:     "keygen",
		short:    "write a CURVE key pair: NAME.key (secret, mode 0600) and NAME.pub",
		synopsis: "[--dir DIR] [--force] NAME",
		about: `Writes a new CURVE key pair for NAME: DIR/NAME.key, the secret key (mode
0600; give it to that node only, with --curve-key), and DIR/NAME.pub, the
public key (give it to the peers that are to trust NAME: put it in their
--curve-allow directory). The files are Z85 text in the format of czmq's
certificates. It refuses to overwrite a key unless --force is given, and
prints the public key.
`,
		examples: `  node keygen --dir keys alpha          writes keys/alpha.key and keys/alpha.pub
  node keygen --dir keys --force alpha  replaces them (a key rotation)
`,
		setup: func(fs *flag.FlagSet) func(*cli) int {
			dir := fs.String("dir", ".", "directory to write the key files in (made if missing)")
			force := fs.Bool("force", false, "overwrite existing key files")
			return func(c *cli) int {
				if len(c.args) != 1 {
					return c.usageError("want one NAME, got %q", c.args)
				}
				name := c.args[0]
				if name == "" || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") {
					return c.usageError("NAME %q: want a plain file name, such as alpha (the files are NAME.key and NAME.pub in --dir)", name)
				}
				if err := os.MkdirAll(*dir, 0o755); err != nil {
					return c.fail(fmt.Errorf("--dir %s: %w", *dir, err))
				}
				kp, err := curve.Generate()
				if err != nil {
					return c.fail(err)
				}
				pub, sec, err := curve.WriteKeyPair(filepath.Join(*dir, name), name, kp, *force)
				if errors.Is(err, curve.ErrExists) {
					return c.fail(fmt.Errorf("%v: keygen does not overwrite a key (a node or its peers may still use it); --force replaces it", err))
				}
				if err != nil {
					return c.fail(err)
				}
				fmt.Fprintf(c.stdout, "secret key: %s (mode 0600: give it to %s only, --curve-key)\npublic key: %s (give it to the peers that trust %s, --curve-allow)\n%s\n",
					sec, name, pub, name, kp.Public)
				return 0
			}
		},
	}
}
