package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/relay-dev/relay"
	"github.com/relay-dev/relay/internal/testutil"
)

// caller is what the scenarios need of a client: *relay.Node, or
// procClient, which runs `node call` and `node cast` processes.
type caller interface {
	Call(ctx context.Context, t relay.Target, method string, args, reply any) error
	Cast(ctx context.Context, t relay.Target, method string, args any) error
}

// procClient calls and casts by running the node binary, one process per
// call or cast. It turns the error the process prints back into relay's
// error vocabulary (*relay.RemoteError, ErrNoSuchMethod, ErrNoServers,
// ErrTimeout) so that the scenarios check both clients alike.
type procClient struct {
	redisURL string
}

// Call runs `node call`; reply must be nil (the process prints the reply
// with %v; the scenarios read state with the in-test node's get).
func (c procClient) Call(ctx context.Context, t relay.Target, method string, args, reply any) error {
	if reply != nil {
		return errors.New("procClient.Call: reply must be nil")
	}
	return c.run(ctx, "call", t, method, args)
}

// Cast runs `node cast`.
func (c procClient) Cast(ctx context.Context, t relay.Target, method string, args any) error {
	return c.run(ctx, "cast", t, method, args)
}

func (c procClient) run(ctx context.Context, cmdName string, t relay.Target, method string, args any) error {
	timeout := 5 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	argv := []string{cmdName, "--matchmaker", c.redisURL, "--topic", t.Topic,
		"--server", t.Server, "--timeout", timeout.String(), method}
	if args != nil {
		argv = append(argv, fmt.Sprint(args))
	}
	// The process bounds itself with --timeout; ctx (plus slack for start-up
	// and Close) bounds the process.
	pctx, cancel := context.WithTimeout(context.Background(), timeout+5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(pctx, nodeBin, argv...)
	var stdout, stderr testutil.SyncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if err == nil {
		return nil
	}
	msg := strings.TrimSpace(stderr.String())
	if msg == "" {
		return fmt.Errorf("node %s: %v (no output)", cmdName, err)
	}
	return parseError(msg)
}

// parseError maps `node call`'s error output to relay's errors.
func parseError(msg string) error {
	const remote = "relay: remote error "
	if i := strings.Index(msg, remote); i >= 0 {
		code, text, _ := strings.Cut(msg[i+len(remote):], ": ")
		return &relay.RemoteError{Code: code, Message: text}
	}
	for _, sentinel := range []error{relay.ErrNoSuchMethod, relay.ErrNoServers, relay.ErrTimeout,
		relay.ErrBackPressure, relay.ErrClosed} {
		if strings.Contains(msg, sentinel.Error()) {
			return fmt.Errorf("%w (process said: %s)", sentinel, msg)
		}
	}
	return errors.New(msg)
}
