package main

import (
	"flag"
	"fmt"
	"log/slog"
	"strings"

	"github.com/relay-dev/relay/matchmaker"
)

// The logging flags every command has.
const (
	logLevelFlag  = "log-level"
	logFormatFlag = "log-format"
)

// registerLogFlags adds --log-level and --log-format to fs.
func registerLogFlags(fs *flag.FlagSet) {
	fs.String(logLevelFlag, "info", "least severe log records written to stderr: debug, info, warn or error")
	fs.String(logFormatFlag, "text", "log format: text (key=value) or json (one object per line)")
}

// setupLogging reads the logging flags into c.log, a logger writing to
// stderr, and routes go-redis's own log lines through it. A bad value is
// an error naming the flag.
func (c *cli) setupLogging() error {
	var level slog.Level
	lv := c.fs.Lookup(logLevelFlag).Value.String()
	switch strings.ToLower(lv) {
	case "debug":
		level = slog.LevelDebug
	case "info":
		level = slog.LevelInfo
	case "warn", "warning":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		return fmt.Errorf("--%s %q: want debug, info, warn or error", logLevelFlag, lv)
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch f := c.fs.Lookup(logFormatFlag).Value.String(); strings.ToLower(f) {
	case "text":
		h = slog.NewTextHandler(c.stderr, opts)
	case "json":
		h = slog.NewJSONHandler(c.stderr, opts)
	default:
		return fmt.Errorf("--%s %q: want text or json", logFormatFlag, f)
	}
	c.handler = h
	c.log = slog.New(h)
	matchmaker.SetRedisLogger(c.log.With("component", "go-redis"))
	return nil
}

// logger returns the command's logger.
func (c *cli) logger() *slog.Logger { return c.log }
