package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// newFlagSet makes a command's FlagSet, with the --config flag every
// command has. It prints nothing itself: parseArgs returns its errors and
// printUsage prints the help.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("node "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.String(configFlag, "", "YAML file of flag values, shared by every command: each takes the keys it knows (also RELAY_CONFIG)")
	registerLogFlags(fs)
	return fs
}

// parseArgs parses args, which may mix flags and positional arguments
// ("call add 5 --server alpha"); "--" ends the flags, and a negative number
// is an argument, not a flag. It returns the positional arguments in order,
// or help when -h or --help was given, or an error in the user's terms.
func parseArgs(fs *flag.FlagSet, args []string) (pos []string, help bool, err error) {
	for {
		for len(args) > 0 && isNegativeNumber(args[0]) {
			pos, args = append(pos, args[0]), args[1:]
		}
		if len(args) == 0 {
			return pos, false, nil
		}
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			return nil, true, nil
		}
		if err != nil {
			return nil, false, flagError(fs, err)
		}
		rest := fs.Args()
		if used := args[:len(args)-len(rest)]; len(used) > 0 && used[len(used)-1] == "--" {
			return append(pos, rest...), false, nil
		}
		if len(rest) == 0 {
			return pos, false, nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

// isNegativeNumber reports whether s is "-" followed by a digit or a dot.
func isNegativeNumber(s string) bool {
	return len(s) > 1 && s[0] == '-' && (s[1] == '.' || s[1] >= '0' && s[1] <= '9')
}

// The messages of package flag that flagError rewrites.
var (
	flagUndefined = regexp.MustCompile(`^flag provided but not defined: -+(.*)$`)
	flagNoValue   = regexp.MustCompile(`^flag needs an argument: -+(.*)$`)
	flagBadValue  = regexp.MustCompile(`^invalid (?:boolean )?value (".*") for (?:flag )?-+([^:]+): `)
)

// flagError turns an error of fs.Parse into a message that names the flag
// as the user typed it (--name) and, for a bad value, the form expected.
func flagError(fs *flag.FlagSet, err error) error {
	msg := err.Error()
	if m := flagUndefined.FindStringSubmatch(msg); m != nil {
		return fmt.Errorf("unknown flag --%s", m[1])
	}
	if m := flagNoValue.FindStringSubmatch(msg); m != nil {
		return fmt.Errorf("--%s needs a value", m[1])
	}
	if m := flagBadValue.FindStringSubmatch(msg); m != nil {
		if f := fs.Lookup(m[2]); f != nil {
			value, uerr := strconv.Unquote(m[1])
			if uerr != nil {
				value = m[1]
			}
			return fmt.Errorf("--%s %q: %s", f.Name, value, want(f, errors.Unwrap(err)))
		}
	}
	return err
}

// want says what form a flag's value takes, for a value that was refused
// with cause.
func want(f *flag.Flag, cause error) string {
	if g, ok := f.Value.(flag.Getter); ok {
		switch g.Get().(type) {
		case time.Duration:
			return "want a duration: a number with a unit, such as 500ms, 5s or 1m30s (units ns, us, ms, s, m, h)"
		case bool:
			return "want true or false"
		case int, int64, uint, uint64:
			return "want a whole number"
		case float64:
			return "want a number"
		}
	}
	if cause == nil {
		return "bad value"
	}
	return cause.Error()
}

// printUsage prints a command's help: usage line, description, flags (as
// --name TYPE, with their defaults) and examples.
func printUsage(w io.Writer, cmd command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: node %s %s\n\n%s\nFlags (may also follow the arguments; each can be set as RELAY_<FLAG>,\nor as a key of the --config file):\n", cmd.name, cmd.synopsis, cmd.about)
	fs.VisitAll(func(f *flag.Flag) {
		typ, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if typ != "" {
			line += " " + typ
		}
		fmt.Fprintf(w, "%s\n    \t%s", line, strings.ReplaceAll(usage, "\n", "\n    \t"))
		switch f.DefValue {
		case "", "false", "0", "0s", "[]":
		default:
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
	fmt.Fprintf(w, "\nExamples:\n%s", cmd.examples)
}

// listFlag is a flag that may be repeated, and whose values may each be a
// comma-separated list: --topic a --topic b,c is [a b c].
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

// Get implements flag.Getter.
func (l *listFlag) Get() any { return []string(*l) }
