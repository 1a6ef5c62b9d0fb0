package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Every command's options can come from three places besides the command
// line, in this order of precedence:
//
//	--flag value                 the command line
//	RELAY_FLAG=value             the environment (upper case, '-' as '_')
//	flag: value                  the YAML file named by --config or RELAY_CONFIG
//
// then the flag's default. A bad value is rejected before the command runs,
// with a message naming the option and where its value came from. See
// testdata/node.yaml.

// configFlag is the flag (and RELAY_CONFIG variable) naming the file.
const configFlag = "config"

// envName is the environment variable of a flag: RELAY_ + upper case, '-' → '_'.
func envName(flagName string) string {
	return "RELAY_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
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
	file, err := readConfig(path, fs)
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
				firstErr = fmt.Errorf("option --%s from %s=%q: %v", f.Name, envName(f.Name), v, err)
			}
			return
		}
		if v, ok := file[f.Name]; ok {
			if err := f.Value.Set(v); err != nil {
				firstErr = fmt.Errorf("option --%s from %s (%s: %q): %v", f.Name, path, f.Name, v, err)
			}
		}
	})
	return firstErr
}

// readConfig reads a flat YAML map of option names to scalar values. Keys
// that are not options of this command are an error.
func readConfig(path string, fs *flag.FlagSet) (map[string]string, error) {
	if path == "" {
		return nil, nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("config file %s: %v", path, err)
	}
	out := make(map[string]string, len(doc))
	for k, v := range doc {
		if fs.Lookup(k) == nil || k == configFlag {
			return nil, fmt.Errorf("config file %s: %q is not an option of %s (see %s -h)", path, k, fs.Name(), fs.Name())
		}
		switch v.(type) {
		case map[string]any, []any, nil:
			return nil, fmt.Errorf("config file %s: option %q: want a single value", path, k)
		}
		out[k] = fmt.Sprint(v)
	}
	return out, nil
}
