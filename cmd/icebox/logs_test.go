package main

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// TestEscapeControl: what a function logs cannot drive the terminal that
// shows it; readable text, newlines and tabs pass unchanged.
func TestEscapeControl(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"plain text, ünïcödé, 日本 ✓", "plain text, ünïcödé, 日本 ✓"},
		{"a\tb\nc", "a\tb\nc"},
		{"\x1b]0;pwned\x07", `\x1b]0;pwned\x07`},                // OSC: window title
		{"\x1b[2J", `\x1b[2J`},                                  // CSI: clear screen
		{"\x1b]52;c;cHduZWQ=\x1b\\", `\x1b]52;c;cHduZWQ=\x1b\`}, // OSC 52: clipboard
		{"ok\rFAKE", `ok\x0dFAKE`},                              // CR overwrites the line
		{"\x00\x7f", `\x00\x7f`},                                // NUL, DEL
		{"\u009b2J", `\u009b2J`},                                // C1 CSI
		{"\x9b2J", `\x9b2J`},                                    // a lone byte an 8-bit terminal reads as CSI
		{"abc\u202edcba", `abc\u202edcba`},                      // bidi override
		{"\ufffd stays", "\ufffd stays"},                        // a real replacement character
		{`already \x1b text`, `already \x1b text`},              // backslashes are not escaped
	} {
		if got := escapeControl(c.in); got != c.want {
			t.Errorf("escapeControl(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// FuzzEscapeControl: the output never holds a rune a terminal acts on, and
// input without any comes back unchanged.
func FuzzEscapeControl(f *testing.F) {
	for _, s := range []string{"", "x", "\x1b[31mred", "\xff\xfe", "a\u2066b", "\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := escapeControl(s)
		if !utf8.ValidString(out) {
			t.Fatalf("escapeControl(%q) = %q: not UTF-8", s, out)
		}
		for _, r := range out {
			if needsEscape(r) {
				t.Fatalf("escapeControl(%q) = %q: holds %U", s, out, r)
			}
		}
		if utf8.ValidString(s) && !strings.ContainsFunc(s, needsEscape) && out != s {
			t.Fatalf("escapeControl(%q) = %q: changed clean input", s, out)
		}
	})
}
