package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
)

// argHelp explains ARG and PAYLOAD in the help of call, cast and notify.
const argHelp = `%[1]s is JSON: 5, -2.5, true, null, "text", [1,2], {"a":1}. A word that is
not JSON (hello) is sent as that string; %[1]s starting with {, [ or " must be
valid JSON. @FILE reads %[1]s from FILE and - from standard input, by the same
rules (for text that is not JSON, the bytes as they are). Without %[1]s, null
is sent. JSON numbers without a fraction or exponent go as integers.
`

// argValue returns the value that the command-line argument arg (named
// name in messages: ARG, PAYLOAD) stands for; see argHelp.
func argValue(name, arg string, stdin io.Reader) (any, error) {
	text, from := arg, " "+shorten(arg)
	switch {
	case arg == "-":
		b, err := io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("%s -: read standard input: %w", name, err)
		}
		text, from = string(b), " from standard input"
	case strings.HasPrefix(arg, "@"):
		b, err := os.ReadFile(arg[1:])
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", name, arg, err)
		}
		text, from = string(b), " from "+arg[1:]
	}
	v, err := parseJSON(text)
	if err == nil {
		return v, nil
	}
	if t := strings.TrimSpace(text); t != "" && strings.ContainsRune(`{["`, rune(t[0])) {
		return nil, fmt.Errorf("%s%s is not valid JSON: %v (to send text that starts with %c as a string, write it as a JSON string)", name, from, err, t[0])
	}
	return text, nil
}

// shorten quotes s for a message, cut to 40 bytes.
func shorten(s string) string {
	if len(s) > 40 {
		s = s[:37] + "..."
	}
	return "'" + s + "'"
}

// parseJSON decodes one JSON value, with integers as int64 (or uint64)
// and other numbers as float64.
func parseJSON(text string) (any, error) {
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("more than one JSON value (offset %d)", dec.InputOffset())
	}
	return numbers(v), nil
}

// numbers replaces the json.Numbers in v by int64, uint64 or float64.
func numbers(v any) any {
	switch v := v.(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i
		}
		if u, err := strconv.ParseUint(v.String(), 10, 64); err == nil {
			return u
		}
		f, _ := v.Float64()
		return f
	case []any:
		for i := range v {
			v[i] = numbers(v[i])
		}
	case map[string]any:
		for k := range v {
			v[k] = numbers(v[k])
		}
	}
	return v
}

// writeJSON writes v, a value decoded from msgpack, as one line of JSON.
func writeJSON(w io.Writer, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(jsonable(v)); err != nil {
		return fmt.Errorf("print as JSON: %w", err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// jsonable converts what msgpack decodes into what JSON can hold: maps with
// non-string keys get their keys printed, NaN and infinities become
// strings, times RFC 3339. Byte strings (msgpack bin) stay []byte, which
// JSON writes as base64.
func jsonable(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = jsonable(e)
		}
		return v
	case map[any]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[fmt.Sprint(k)] = jsonable(e)
		}
		return out
	case []any:
		for i := range v {
			v[i] = jsonable(v[i])
		}
		return v
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Sprint(v)
		}
	case float32:
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Sprint(v)
		}
	case time.Time:
		return v.Format(time.RFC3339Nano)
	}
	return v
}
