// Command node serves, calls, casts, notifies, listens, proxies,
// benchmarks and demonstrates relay.
//
//	node serve  --matchmaker URL --topic T [flags]         serve the demo endpoint
//	node call   --matchmaker URL --topic T METHOD [ARG]    call a method, print the reply as JSON
//	node cast   --matchmaker URL --topic T METHOD [ARG]    cast to a method
//	node notify --matchmaker URL --topic T EVENT [PAYLOAD] publish a notification
//	node listen --matchmaker URL --topic T [--pool P]      print notifications as JSON lines
//	node status --matchmaker URL                           list registrations and their TTL
//	node info   --matchmaker URL [--server NAME]           print each server node's info as JSON
//	node dashboard --matchmaker URL --http ADDR            serve a live page of the cluster
//	node proxy  (--router | --publisher) --matchmaker URL  run a router or publisher proxy
//	node keygen [--dir DIR] NAME                           write a CURVE key pair
//	node demo                                              a 3-server cluster in one process, explained
//	node bench [flags]                                     relay against raw libzmq
//	node chaos [--mode M --seed N --duration D]            a cluster killed at random; what was lost
//	node scale [--nodes N --procs P --mode M]              1,000 nodes on one machine: what they cost
//
// ARG and PAYLOAD are JSON, "@FILE" or "-" (standard input). Flags may come
// before or after the positional arguments; every flag can also be set as
// RELAY_<FLAG> or in the YAML file named by --config, which every command
// reads, each taking the keys it knows.
//
// It parses flags and calls the relay package and the internal demo,
// bench, chaos and scale packages; it holds no logic of its own.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// command is one subcommand.
type command struct {
	name     string
	short    string // its line in node -h
	synopsis string // what follows "node NAME" in its usage line
	about    string // what it does, in node NAME -h
	examples string
	// setup registers the command's flags on fs and returns its body, which
	// runs once the flags, the environment and the config file are applied.
	setup func(fs *flag.FlagSet) func(c *cli) int
}

// commandFlags are the flags of a command kept in a struct: register
// defines them, run is the command's body.
type commandFlags interface {
	register(fs *flag.FlagSet)
	run(c *cli) int
}

// setupOf is the setup of a command whose flags newFlags makes.
func setupOf(newFlags func() commandFlags) func(fs *flag.FlagSet) func(c *cli) int {
	return func(fs *flag.FlagSet) func(c *cli) int {
		f := newFlags()
		f.register(fs)
		return f.run
	}
}

func commands() []command {
	return []command{
		serveCommand(), callCommand("call"), callCommand("cast"), notifyCommand(), listenCommand(),
		statusCommand(), infoCommand(), dashboardCommand(), proxyCommand(), keygenCommand(), demoCommand(), benchCommand(), chaosCommand(),
		scaleCommand(),
	}
}

const mainExamples = `
Examples:
  node demo                          round-robin, directed calls, casts, timeouts and errors
  node serve --config testdata/node.yaml &
  node call --config testdata/node.yaml add 5              prints 5
  node call --config testdata/node.yaml get --server 127.0.0.2
  node bench --json                  relay vs raw libzmq, as JSON
  node serve -h                      help of one command

Matchmakers: memory://NAME lives inside one process; across processes use
redis://host:port (or redis+sentinel://h1,h2/master) or a static hosts file,
file:///path/hosts.json (see testdata/hosts.json). demo and bench run
everything in one process.

Every flag can also be set as RELAY_<FLAG> (RELAY_MATCHMAKER, RELAY_TIMEOUT,
...) or in the YAML file named by --config (or RELAY_CONFIG): one file
serves every command, each takes the keys it knows. The command line wins,
then the environment, then the file.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run runs the command line args and returns the exit code: 0 success,
// 1 failure, 2 usage error (and for bench --check, 3: a target not met).
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(args[1:], stdin, stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "node: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "node runs relay, brokerless messaging over ZeroMQ: calls, casts, fanout and notifications.")
	fmt.Fprintln(w, "\nUsage:\n  node <command> [flags] [arguments]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-6s %s\n", c.name, c.short)
	}
	fmt.Fprint(w, mainExamples)
}

// cli is one run of a command: its flags, positional arguments and streams.
type cli struct {
	name   string
	fs     *flag.FlagSet
	args   []string // the positional arguments
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	// log writes to stderr as --log-level and --log-format say; handler
	// is its handler.
	log     *slog.Logger
	handler slog.Handler
}

// run parses args (flags anywhere among them), applies the environment and
// the config file, and runs the command's body.
func (cmd command) run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet(cmd.name)
	body := cmd.setup(fs)
	c := &cli{name: cmd.name, fs: fs, stdin: stdin, stdout: stdout, stderr: stderr}
	pos, help, err := parseArgs(fs, args)
	if err != nil {
		return c.usageError("%v", err)
	}
	// With -h too: `node serve --config f -h` fails when f is missing or
	// has a bad value, instead of printing the help over it.
	if err := applyConfig(fs, os.LookupEnv); err != nil {
		return c.usageError("%v", err)
	}
	if help {
		printUsage(stdout, cmd, fs)
		return 0
	}
	if err := c.setupLogging(); err != nil {
		return c.usageError("%v", err)
	}
	c.args = pos
	return body(c)
}

// usageError prints a usage error and where to find help, and returns
// exit code 2.
func (c *cli) usageError(format string, args ...any) int {
	fmt.Fprintf(c.stderr, "node %s: %s\nRun 'node %s -h' for help.\n", c.name, fmt.Sprintf(format, args...), c.name)
	return 2
}

// fail prints err, with relay's option names turned into this command's
// flags, and returns exit code 1.
func (c *cli) fail(err error) int {
	fmt.Fprintf(c.stderr, "node %s: %s\n", c.name, c.inFlagTerms(err))
	return 1
}

// noArgs is a usage error unless the command got no positional arguments.
func (c *cli) noArgs() (code int, ok bool) {
	if len(c.args) > 0 {
		return c.usageError("unexpected arguments %q", c.args), false
	}
	return 0, true
}

// signalContext returns a context that ends at SIGINT or SIGTERM, and the
// function that stops listening for them.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}
