// Package flagcheck checks the fields of a harness's configuration (the
// engines of node chaos and node scale) and names the first bad one as the
// flag that sets it:
//
//	v := flagcheck.New("chaos")
//	flagcheck.Between(v, "servers", c.Servers, 2, 16)
//	flagcheck.AtLeast(v, "duration", c.Duration, 5*time.Second)
//	v.Bad(c.Mode == "", "mode", "is empty")
//	return v.Err() // chaos: --servers: want 2 to 16, got 1
//
// A Checker is used by one goroutine.
package flagcheck

import (
	"fmt"
	"slices"
)

// Checker keeps the first bad flag found.
type Checker struct {
	prefix string
	err    error
}

// New returns a Checker whose errors start with prefix, the harness's name.
func New(prefix string) *Checker { return &Checker{prefix: prefix} }

// Err is the first bad flag found, as "prefix: --flag: message", or nil.
func (v *Checker) Err() error { return v.err }

// Bad records flag as bad, with the message format and args, when bad is
// true and no flag was found bad before.
func (v *Checker) Bad(bad bool, flag, format string, args ...any) {
	if bad && v.err == nil {
		v.err = fmt.Errorf("%s: --%s: %s", v.prefix, flag, fmt.Sprintf(format, args...))
	}
}

// Missing records, when missing is true and nothing was found bad before,
// that what the run needs is missing: "prefix: no what".
func (v *Checker) Missing(missing bool, what string) {
	if missing && v.err == nil {
		v.err = fmt.Errorf("%s: no %s", v.prefix, what)
	}
}

// number is what the range checks compare.
type number interface {
	~int | ~int64 | ~float64 // ~int64 takes time.Duration
}

// OneOf checks that x is one of allowed.
func OneOf[T ~string](v *Checker, flag string, x T, allowed []T) {
	v.Bad(!slices.Contains(allowed, x), flag, "%q is not one of %v", x, allowed)
}

// AtLeast checks that x >= min.
func AtLeast[T number](v *Checker, flag string, x, min T) {
	v.Bad(x < min, flag, "want at least %v, got %v", min, x)
}

// Between checks that lo <= x <= hi.
func Between[T number](v *Checker, flag string, x, lo, hi T) {
	v.Bad(x < lo || x > hi, flag, "want %v to %v, got %v", lo, hi, x)
}

// Positive checks that x > 0.
func Positive[T number](v *Checker, flag string, x T) {
	v.Bad(x <= 0, flag, "must be positive, got %v", x)
}

// NotNegative checks that x >= 0.
func NotNegative[T number](v *Checker, flag string, x T) {
	v.Bad(x < 0, flag, "must not be negative, got %v", x)
}
