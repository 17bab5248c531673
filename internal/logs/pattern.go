package logs

import (
	"fmt"
	"strings"

	"icebox/internal/errdefs"
)

// pattern is a CloudWatch filter pattern: for unstructured events every
// plain term or "quoted phrase" must occur in the message (case-sensitive),
// no -term may occur, and when ?terms are given at least one of them must
// occur; a pattern in braces is a JSON pattern (jsonpattern.go).
// Space-delimited ([…]) and regex (%…%) patterns are refused rather than
// silently matched as text.
type pattern struct {
	all, none, any []string
	json           *jsonPattern
}

func parsePattern(p string) (pattern, error) {
	var pt pattern
	p = strings.TrimSpace(p)
	if strings.HasPrefix(p, "{") {
		var err error
		pt.json, err = parseJSONPattern(p)
		return pt, err
	}
	if p != "" && strings.ContainsRune("[%", rune(p[0])) {
		return pt, fmt.Errorf("Invalid filter pattern %q: only term, quoted-phrase and JSON patterns are supported: %w", p, errdefs.ErrInvalid)
	}
	for i := 0; i < len(p); {
		if isSpace(p[i]) {
			i++
			continue
		}
		list := &pt.all
		switch p[i] {
		case '-':
			list, i = &pt.none, i+1
		case '?':
			list, i = &pt.any, i+1
		}
		var term string
		if i < len(p) && p[i] == '"' {
			var b strings.Builder
			j := i + 1
			for ; j < len(p) && p[j] != '"'; j++ {
				if p[j] == '\\' && j+1 < len(p) {
					j++
				}
				b.WriteByte(p[j])
			}
			if j == len(p) {
				return pt, fmt.Errorf("Invalid filter pattern %q: unterminated quoted phrase: %w", p, errdefs.ErrInvalid)
			}
			term, i = b.String(), j+1
		} else {
			j := i
			for j < len(p) && !isSpace(p[j]) {
				j++
			}
			term, i = p[i:j], j
		}
		if term != "" {
			*list = append(*list, term)
		}
	}
	return pt, nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (pt pattern) match(msg string) bool {
	if pt.json != nil {
		return pt.json.match(msg)
	}
	for _, t := range pt.all {
		if !strings.Contains(msg, t) {
			return false
		}
	}
	for _, t := range pt.none {
		if strings.Contains(msg, t) {
			return false
		}
	}
	for _, t := range pt.any {
		if strings.Contains(msg, t) {
			return true
		}
	}
	return len(pt.any) == 0
}
