// Command node serves, calls, casts, benchmarks and demonstrates relay.
//
//	node serve --matchmaker URL --topic T [flags]   serve the demo endpoint
//	node call  --matchmaker URL --topic T METHOD ARG  call a method, print the reply
//	node cast  --matchmaker URL --topic T METHOD ARG  cast to a method
//	node status --matchmaker URL                    list registrations and their TTL
//	node proxy --publisher --matchmaker URL [--ack | --local]  run a publisher proxy
//	node demo                                       a 3-server cluster in one process, explained
//	node bench [flags]                              relay against raw libzmq
//
// It parses flags and calls the relay package and the internal demo and
// bench packages; it holds no logic of its own.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// command is one subcommand.
type command struct {
	name  string
	short string
	run   func(args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"serve", "serve the demo endpoint on a topic until interrupted", runServe},
		{"call", "call a method on a topic and print the reply", runCall},
		{"cast", "cast (one-way) to a method on a topic", runCast},
		{"status", "list a matchmaker's registrations with their remaining TTL", runStatus},
		{"proxy", "run a publisher proxy for pub/sub fanout and notifications", runProxy},
		{"demo", "run a 3-server cluster in this process and explain each step", runDemo},
		{"bench", "measure relay against raw libzmq and check the targets", runBench},
	}
}

const mainExamples = `
Examples:
  node demo                       see round-robin, directed calls, casts, timeouts and errors
  node bench                      relay vs raw libzmq: latency, calls/s, casts/s
  node bench --json               the same as JSON
  node serve -h                   help of one command

Matchmakers: memory://NAME lives inside one process; across processes use
redis://host:port (or redis+sentinel://h1,h2/master) or a static hosts file,
file:///path/hosts.json (see testdata/hosts.json). demo and bench run
everything in one process.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run runs the command line args and returns the exit code: 0 success,
// 1 failure, 2 usage error.
func run(args []string, stdout, stderr io.Writer) int {
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
			return c.run(args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "node: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "node runs relay, a brokerless ZeroMQ RPC runtime.")
	fmt.Fprintln(w, "\nUsage:\n  node <command> [flags] [arguments]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-6s %s\n", c.name, c.short)
	}
	fmt.Fprint(w, mainExamples)
}

// newFlagSet makes a subcommand's FlagSet; its usage prints synopsis,
// description, flags and examples.
func newFlagSet(name, synopsis, description, examples string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("node "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.String(configFlag, "", "YAML file of option values (also RELAY_CONFIG); every option may also be set as RELAY_<OPTION>; the command line wins")
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: node %s %s\n\n%s\nFlags:\n", name, synopsis, description)
		fs.PrintDefaults()
		fmt.Fprintf(w, "\nExamples:\n%s", examples)
	}
	return fs
}

// parse parses args; ok is false when the command must exit with code.
// -h prints the usage to stdout and exits 0; a bad flag prints flag's
// message and the usage to stderr and exits 2.
func parse(fs *flag.FlagSet, args []string, stdout io.Writer) (code int, ok bool) {
	usage := fs.Usage
	fs.Usage = func() {} // printed below, once, to the right stream
	err := fs.Parse(args)
	fs.Usage = usage
	switch {
	case errors.Is(err, flag.ErrHelp):
		stderr := fs.Output()
		fs.SetOutput(stdout)
		fs.Usage()
		fs.SetOutput(stderr)
		return 0, false
	case err != nil:
		fs.Usage()
		return 2, false
	}
	if err := applyConfig(fs, os.LookupEnv); err != nil {
		fmt.Fprintf(fs.Output(), "%s: %v\n", fs.Name(), err)
		return 2, false
	}
	return 0, true
}

// usageError prints msg and the usage, and returns exit code 2.
func usageError(fs *flag.FlagSet, format string, args ...any) int {
	fmt.Fprintf(fs.Output(), "%s: %s\n\n", fs.Name(), fmt.Sprintf(format, args...))
	fs.Usage()
	return 2
}
