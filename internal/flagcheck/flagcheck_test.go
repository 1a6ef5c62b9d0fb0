package flagcheck

import (
	"testing"
	"time"
)

func TestFirstBadFlagWins(t *testing.T) {
	for _, tc := range []struct {
		name  string
		check func(v *Checker)
		want  string
	}{
		{"all good", func(v *Checker) {
			OneOf(v, "mode", "a", []string{"a", "b"})
			AtLeast(v, "n", 3, 1)
			Between(v, "m", 2, 1, 4)
			Positive(v, "d", time.Second)
			NotNegative(v, "w", 0)
		}, ""},
		{"one of", func(v *Checker) { OneOf(v, "mode", "c", []string{"a", "b"}) }, `x: --mode: "c" is not one of [a b]`},
		{"at least", func(v *Checker) { AtLeast(v, "duration", time.Second, 5*time.Second) }, "x: --duration: want at least 5s, got 1s"},
		{"between", func(v *Checker) { Between(v, "servers", 1, 2, 16) }, "x: --servers: want 2 to 16, got 1"},
		{"positive", func(v *Checker) { Positive(v, "call-timeout", time.Duration(0)) }, "x: --call-timeout: must be positive, got 0s"},
		{"not negative", func(v *Checker) { NotNegative(v, "rate", -1) }, "x: --rate: must not be negative, got -1"},
		{"missing", func(v *Checker) { v.Missing(true, "node binary to run") }, "x: no node binary to run"},
		{"first wins", func(v *Checker) {
			v.Bad(true, "a", "first")
			v.Bad(true, "b", "second")
		}, "x: --a: first"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := New("x")
			tc.check(v)
			got := ""
			if err := v.Err(); err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
