package logs

import (
	"strings"
	"testing"
)

func TestPattern(t *testing.T) {
	const msg = `2026-11-25T12:00:00Z	ERROR [db] connection "primary" refused: retry 3`
	for _, c := range []struct {
		pattern string
		match   bool
	}{
		{"", true},
		{"ERROR", true},
		{"error", false}, // case-sensitive, like CloudWatch
		{"ERROR refused", true},
		{"ERROR accepted", false},
		{`"connection \"primary\" refused"`, true},
		{`"primary refused"`, false},
		{`"[db]"`, true},
		{"ERROR -WARN", true},
		{"ERROR -retry", false},
		{"?WARN ?refused", true},
		{"?WARN ?INFO", false},
		{"ERROR ?WARN ?db", true},
	} {
		pt, err := parsePattern(c.pattern)
		if err != nil {
			t.Fatalf("%q: %v", c.pattern, err)
		}
		if got := pt.match(msg); got != c.match {
			t.Errorf("%q matched %v, want %v", c.pattern, got, c.match)
		}
	}
	for _, bad := range []string{`{ $.level = "ERROR" }`, `[ip, user]`, `%ERR.*%`, `"unterminated`} {
		if _, err := parsePattern(bad); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}

// FuzzPattern: any pattern from the outside parses or is refused, never
// panics, and a pattern made of one unquoted term matches its own text.
func FuzzPattern(f *testing.F) {
	for _, s := range []string{"", "ERROR", `"a b" -c ?d`, `"\"`, `-`, `?"x"`, "{", "a\tb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		pt, err := parsePattern(p)
		if err != nil {
			return
		}
		pt.match(p)
		if term := strings.TrimSpace(p); term != "" && !strings.ContainsAny(term, " \t\n\r\"") &&
			term[0] != '-' && term[0] != '?' && !pt.match(term) {
			t.Fatalf("term %q does not match itself", term)
		}
	})
}
