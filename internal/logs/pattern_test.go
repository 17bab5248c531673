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
	for _, bad := range []string{`[ip, user]`, `%ERR.*%`, `"unterminated`, `{ $.level = }`, `{ level = "x" }`, `{ $.a = "x" `,
		`{ $.a > "x" }`, `{ ($.a = 1 }`, `{ $.a = 1 ) }`, `{ $.a[x] = 1 }`, `{ $. = 1 }`, "{ " + strings.Repeat("(", 40) + "$.a = 1" + strings.Repeat(")", 40) + " }"} {
		if _, err := parsePattern(bad); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}

func TestJSONPattern(t *testing.T) {
	const msg = `{"timestamp":"2026-11-25T12:00:00.000Z","level":"ERROR","message":"db/primary refused","requestId":"r-1",` +
		`"latency":512.5,"ok":false,"tags":["a","b"],"user":{"id":7,"name":"bot-1"},"none":null}`
	for _, c := range []struct {
		pattern string
		match   bool
	}{
		{`{ $.level = "ERROR" }`, true},
		{`{$.level="ERROR"}`, true},
		{`{ $.level = ERROR }`, true},
		{`{ $.level = "INFO" }`, false},
		{`{ $.level != "INFO" }`, true},
		{`{ $.message = "db/*" }`, true},
		{`{ $.message = "*refused" }`, true},
		{`{ $.message = "db" }`, false},
		{`{ $.latency > 500 }`, true},
		{`{ $.latency <= 500 }`, false},
		{`{ $.latency = 512.5 }`, true},
		{`{ $.level = 1 }`, false},
		{`{ $.user.id = 7 && $.user.name = "bot*" }`, true},
		{`{ $.user.id = 8 || $.tags[1] = "b" }`, true},
		{`{ ($.user.id = 8 || $.tags[0] = "b") && $.level = "ERROR" }`, false},
		{`{ $.ok IS FALSE }`, true},
		{`{ $.ok IS TRUE }`, false},
		{`{ $.none IS NULL }`, true},
		{`{ $.missing NOT EXISTS }`, true},
		{`{ $.level NOT EXISTS }`, false},
		{`{ $.tags[5] = "a" }`, false},
	} {
		pt, err := parsePattern(c.pattern)
		if err != nil {
			t.Fatalf("%q: %v", c.pattern, err)
		}
		if got := pt.match(msg); got != c.match {
			t.Errorf("%q matched %v, want %v", c.pattern, got, c.match)
		}
	}
	pt, _ := parsePattern(`{ $.level = "ERROR" }`)
	for _, other := range []string{`ERROR plain text`, `[1,2]`, `{"level":"ERROR"`, ``} {
		if pt.match(other) {
			t.Errorf("%q matched a JSON pattern", other)
		}
	}
}

// FuzzPattern: any pattern from the outside parses or is refused, never
// panics, and a pattern made of one unquoted term matches its own text (a
// JSON pattern, "{…}", is not a term: it matches JSON events only).
func FuzzPattern(f *testing.F) {
	for _, s := range []string{"", "ERROR", `"a b" -c ?d`, `"\"`, `-`, `?"x"`, "{", "a\tb", `{ ($.a[0].b = "x*" || $.n >= 1.5) && $.c NOT EXISTS }`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		pt, err := parsePattern(p)
		if err != nil {
			return
		}
		pt.match(p)
		if term := strings.TrimSpace(p); term != "" && !strings.ContainsAny(term, " \t\n\r\"") &&
			term[0] != '-' && term[0] != '?' && term[0] != '{' && !pt.match(term) {
			t.Fatalf("term %q does not match itself", term)
		}
	})
}
