// Package spectest holds the checks that the spec tests of alarms and deploy share:
// an error that must say what is wrong (or be nil), and the boundaries of a limit.
package spectest

import (
	"strings"
	"testing"
)

// Err fails t unless err is nil when want is "" and contains want otherwise.
func Err(t testing.TB, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != "" && err == nil:
		t.Fatalf("want error containing %q, got none", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Fatalf("error %q does not contain %q", err, want)
	}
}

// Size is one size of a limited input and whether a spec with it must pass.
type Size struct {
	N  int
	OK bool
}

// Around is the boundary table of an upper limit: one below and at it pass, one
// above fails.
func Around(limit int) []Size {
	return []Size{{limit - 1, true}, {limit, true}, {limit + 1, false}}
}

// Below is the boundary table of a lower limit: one below fails, at it and one
// above pass.
func Below(limit int) []Size {
	return []Size{{limit - 1, false}, {limit, true}, {limit + 1, true}}
}

// Limit fails t unless err accepts a size that must pass and refuses one that must
// not, naming field ("field: ...").
func Limit(t testing.TB, err error, field string, s Size) {
	t.Helper()
	switch {
	case s.OK && err != nil:
		t.Fatalf("%d refused: %v", s.N, err)
	case !s.OK && err == nil:
		t.Fatalf("%d accepted", s.N)
	case !s.OK && !strings.Contains(err.Error(), field+":"):
		t.Fatalf("error does not name %s: %v", field, err)
	}
}
