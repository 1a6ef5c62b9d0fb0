package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Every command's flags can come from three places besides the command
// line, in this order of precedence:
//
//	--flag value                 the command line
//	RELAY_FLAG=value             the environment (upper case, '-' as '_')
//	flag: value                  the YAML file named by --config or RELAY_CONFIG
//
// then the flag's default. One file serves every command: each takes the
// keys that are its flags and leaves the others, and a key that no command
// knows is an error (a typo). A bad value is rejected before the command
// runs, with a message naming the flag, where its value came from and the
// form expected. Flags and keys are visited in a fixed order, so the same
// mistake always gets the same message. See testdata/node.yaml.

// configFlag is the flag (and RELAY_CONFIG variable) naming the file.
const configFlag = "config"

// envName is the environment variable of a flag: RELAY_ + upper case, '-' → '_'.
func envName(flagName string) string {
	return "RELAY_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// configValue is one key of the config file.
type configValue struct {
	value string
	line  int
}

// applyConfig sets every flag not given on the command line from the
// environment or the config file.
func applyConfig(fs *flag.FlagSet, lookupEnv func(string) (string, bool)) error {
	given := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })

	path := fs.Lookup(configFlag).Value.String()
	if !given[configFlag] {
		if v, ok := lookupEnv(envName(configFlag)); ok {
			path = v
		}
	}
	file, err := readConfig(path)
	if err != nil {
		return err
	}
	var firstErr error
	fs.VisitAll(func(f *flag.Flag) {
		if firstErr != nil || given[f.Name] || f.Name == configFlag {
			return
		}
		if v, ok := lookupEnv(envName(f.Name)); ok {
			if err := f.Value.Set(v); err != nil {
				firstErr = fmt.Errorf("--%s from %s=%q: %s", f.Name, envName(f.Name), v, want(f, err))
			}
			return
		}
		if v, ok := file[f.Name]; ok {
			if err := f.Value.Set(v.value); err != nil {
				firstErr = fmt.Errorf("--%s from %s line %d (%s: %q): %s", f.Name, path, v.line, f.Name, v.value, want(f, err))
			}
		}
	})
	return firstErr
}

// readConfig reads a YAML map of flag names to single values, as they would
// be typed after the flag. A key that is no flag of any command is an
// error. A relative file: matchmaker is taken relative to the file's
// directory.
func readConfig(path string) (map[string]configValue, error) {
	if path == "" {
		return nil, nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--config: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("config file %s: %v", path, err)
	}
	if len(doc.Content) == 0 {
		return nil, nil // empty, or only comments
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("config file %s line %d: want a map of flag names to values (see testdata/node.yaml)", path, top.Line)
	}
	known := knownOptions()
	out := make(map[string]configValue, len(top.Content)/2)
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		if !known[k.Value] {
			return nil, fmt.Errorf("config file %s line %d: %q is not a flag of any node command (see node <command> -h)", path, k.Line, k.Value)
		}
		if _, dup := out[k.Value]; dup {
			return nil, fmt.Errorf("config file %s line %d: %q is set twice", path, k.Line, k.Value)
		}
		if v.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("config file %s line %d: %s: want a single value, as typed after --%s", path, v.Line, k.Value, k.Value)
		}
		value := v.Value
		if v.Tag == "!!null" {
			value = ""
		}
		if k.Value == "matchmaker" {
			value = absFileURL(value, filepath.Dir(path))
		}
		out[k.Value] = configValue{value: value, line: k.Line}
	}
	return out, nil
}

// knownOptions returns the flag names of every command but --config.
func knownOptions() map[string]bool {
	known := make(map[string]bool)
	for _, cmd := range commands() {
		fs := newFlagSet(cmd.name)
		cmd.setup(fs)
		fs.VisitAll(func(f *flag.Flag) { known[f.Name] = true })
	}
	delete(known, configFlag)
	return known
}
