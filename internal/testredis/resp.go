package testredis

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// endpoint is how the package itself talks to one of its processes: the
// address, and the password and TLS settings the process demands.
type endpoint struct {
	addr     string
	password string      // AUTH with it first when not empty
	tls      *tls.Config // dial TLS when not nil
}

// do sends one command to ep and returns its reply: a string (simple or
// bulk), an int64, nil, or a []any of those. An error reply is an error.
// The whole exchange takes at most one second.
func (ep endpoint) do(args ...string) (any, error) {
	d := net.Dialer{Timeout: time.Second}
	var conn net.Conn
	var err error
	if ep.tls != nil {
		conn, err = tls.DialWithDialer(&d, "tcp", ep.addr, ep.tls)
	} else {
		conn, err = d.Dial("tcp", ep.addr)
	}
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	rd := bufio.NewReader(conn)
	if ep.password != "" {
		if err := writeCommand(conn, []string{"AUTH", ep.password}); err != nil {
			return nil, err
		}
		if _, err := readReply(rd); err != nil {
			return nil, fmt.Errorf("testredis: AUTH on %s: %w", ep.addr, err)
		}
	}
	if err := writeCommand(conn, args); err != nil {
		return nil, err
	}
	return readReply(rd)
}

// str sends one command and returns its reply as a string.
func (ep endpoint) str(args ...string) (string, error) {
	reply, err := ep.do(args...)
	if err != nil {
		return "", err
	}
	switch v := reply.(type) {
	case string:
		return v, nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case nil:
		return "", nil
	}
	return "", fmt.Errorf("testredis: %s: want a string, got %T", args[0], reply)
}

// strings sends one command and returns its reply, an array of strings.
func (ep endpoint) strings(args ...string) ([]string, error) {
	reply, err := ep.do(args...)
	if err != nil {
		return nil, err
	}
	arr, ok := reply.([]any)
	if !ok && reply != nil {
		return nil, fmt.Errorf("testredis: %s: want an array, got %T", args[0], reply)
	}
	out := make([]string, 0, len(arr))
	for _, e := range arr {
		s, ok := e.(string)
		if !ok {
			return nil, fmt.Errorf("testredis: %s: want strings in the array, got %T", args[0], e)
		}
		out = append(out, s)
	}
	return out, nil
}

// field returns the value of "name:" in a reply of "name:value" lines
// (INFO, CLUSTER INFO), or "" when there is none.
func field(text, name string) string {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimRight(line, "\r"), name+":"); ok {
			return v
		}
	}
	return ""
}

func writeCommand(w io.Writer, args []string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// readReply reads one RESP2 reply.
func readReply(rd *bufio.Reader) (any, error) {
	line, err := rd.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return nil, errors.New("testredis: empty reply line")
	}
	switch body := line[1:]; line[0] {
	case '+':
		return body, nil
	case '-':
		return nil, errors.New(body)
	case ':':
		return strconv.ParseInt(body, 10, 64)
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return nil, err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(rd, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return nil, err
		}
		arr := make([]any, n)
		for i := range arr {
			if arr[i], err = readReply(rd); err != nil {
				return nil, err
			}
		}
		return arr, nil
	}
	return nil, fmt.Errorf("testredis: unexpected reply %q", line)
}
