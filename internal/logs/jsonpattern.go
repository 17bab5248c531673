package logs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"strconv"
	"strings"

	"icebox/internal/errdefs"
)

// jsonPattern is a CloudWatch filter pattern for JSON events, what
// structured logs (LoggingConfig JSON) are searched with:
//
//	{ $.level = "ERROR" }   { $.latency >= 500 && $.user != "bot*" }
//	{ ($.a = 1) || $.b IS TRUE }   { $.error NOT EXISTS }   { $.x IS NULL }
//
// A selector is $ followed by .name and [index] steps; a string value
// (quoted, or a bare word) matches a string field, * matching any run of
// characters, and is compared with = or !=; a number matches a number
// field with = != < > <= >=. && binds tighter than ||. An event that is not
// a JSON object matches nothing.
type jsonPattern struct{ root jsonExpr }

type jsonExpr interface{ eval(doc any) bool }

type jsonOr []jsonExpr
type jsonAnd []jsonExpr

func (o jsonOr) eval(doc any) bool {
	for _, e := range o {
		if e.eval(doc) {
			return true
		}
	}
	return false
}

func (a jsonAnd) eval(doc any) bool {
	for _, e := range a {
		if !e.eval(doc) {
			return false
		}
	}
	return true
}

// jsonTest is one selector's test.
type jsonTest struct {
	steps []any  // string names and int indexes
	op    string // = != < > <= >=, or "is" (value true/false/null), "exists", "missing"
	str   string // a string value (op = or !=)
	num   *float64
	is    any // true, false or nil for "is"
}

func (t jsonTest) eval(doc any) bool {
	v, ok := selectJSON(doc, t.steps)
	switch t.op {
	case "exists":
		return ok
	case "missing":
		return !ok
	case "is":
		return ok && v == t.is
	}
	if !ok {
		return false
	}
	if t.num != nil {
		f, isNum := v.(float64)
		if !isNum {
			return false
		}
		switch t.op {
		case "=":
			return f == *t.num
		case "!=":
			return f != *t.num
		case "<":
			return f < *t.num
		case ">":
			return f > *t.num
		case "<=":
			return f <= *t.num
		case ">=":
			return f >= *t.num
		}
		return false
	}
	s, isStr := v.(string)
	if !isStr {
		return false
	}
	eq := wildcardMatch(t.str, s)
	return eq == (t.op == "=")
}

// wildcardMatch matches s against pat, where * is any run of characters.
func wildcardMatch(pat, s string) bool {
	if !strings.Contains(pat, "*") {
		return pat == s
	}
	// path.Match's other metacharacters are escaped first.
	var b strings.Builder
	for _, r := range pat {
		if r == '?' || r == '[' || r == '\\' {
			b.WriteByte('\\')
		}
		if r == '/' {
			// path.Match's * stops at /; match it through a stand-in.
			r = '\x00'
		}
		b.WriteRune(r)
	}
	ok, _ := path.Match(b.String(), strings.ReplaceAll(s, "/", "\x00"))
	return ok
}

func selectJSON(v any, steps []any) (any, bool) {
	for _, st := range steps {
		switch k := st.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil, false
			}
			if v, ok = m[k]; !ok {
				return nil, false
			}
		case int:
			a, ok := v.([]any)
			if !ok || k >= len(a) {
				return nil, false
			}
			v = a[k]
		}
	}
	return v, true
}

func (p *jsonPattern) match(msg string) bool {
	b := bytes.TrimSpace([]byte(msg))
	if len(b) == 0 || b[0] != '{' {
		return false
	}
	var doc any
	if json.Unmarshal(b, &doc) != nil {
		return false
	}
	return p.root.eval(doc)
}

// parseJSONPattern parses a pattern that starts with {.
func parseJSONPattern(p string) (*jsonPattern, error) {
	s := strings.TrimSpace(p)
	if !strings.HasSuffix(s, "}") {
		return nil, badJSONPattern(p, "it does not end with }")
	}
	ps := &jsonParser{src: p, s: strings.TrimSpace(s[1 : len(s)-1])}
	e, err := ps.or(0)
	if err == nil && ps.rest() != "" {
		err = badJSONPattern(p, fmt.Sprintf("unexpected %q", ps.rest()))
	}
	if err != nil {
		return nil, err
	}
	return &jsonPattern{root: e}, nil
}

func badJSONPattern(p, why string) error {
	return fmt.Errorf("Invalid filter pattern %q: %s: %w", p, why, errdefs.ErrInvalid)
}

type jsonParser struct {
	src string
	s   string // what is left
}

func (ps *jsonParser) rest() string { return strings.TrimSpace(ps.s) }

// eat consumes tok if the input starts with it.
func (ps *jsonParser) eat(tok string) bool {
	r := ps.rest()
	if strings.HasPrefix(r, tok) {
		ps.s = r[len(tok):]
		return true
	}
	return false
}

// maxDepth bounds parentheses, so a pattern from outside cannot exhaust the
// stack.
const maxDepth = 32

func (ps *jsonParser) or(depth int) (jsonExpr, error) {
	var list jsonOr
	for {
		e, err := ps.and(depth)
		if err != nil {
			return nil, err
		}
		list = append(list, e)
		if !ps.eat("||") {
			break
		}
	}
	if len(list) == 1 {
		return list[0], nil
	}
	return list, nil
}

func (ps *jsonParser) and(depth int) (jsonExpr, error) {
	var list jsonAnd
	for {
		e, err := ps.unary(depth)
		if err != nil {
			return nil, err
		}
		list = append(list, e)
		if !ps.eat("&&") {
			break
		}
	}
	if len(list) == 1 {
		return list[0], nil
	}
	return list, nil
}

func (ps *jsonParser) unary(depth int) (jsonExpr, error) {
	if ps.eat("(") {
		if depth >= maxDepth {
			return nil, badJSONPattern(ps.src, "too deeply nested")
		}
		e, err := ps.or(depth + 1)
		if err != nil {
			return nil, err
		}
		if !ps.eat(")") {
			return nil, badJSONPattern(ps.src, "unbalanced parentheses")
		}
		return e, nil
	}
	return ps.test()
}

func (ps *jsonParser) test() (jsonExpr, error) {
	r := ps.rest()
	if !strings.HasPrefix(r, "$") {
		return nil, badJSONPattern(ps.src, "a selector must start with $")
	}
	var t jsonTest
	i := 1
	for i < len(r) {
		switch r[i] {
		case '.':
			j := i + 1
			for j < len(r) && (isWordByte(r[j]) || r[j] == '-' || r[j] == '@') {
				j++
			}
			if j == i+1 {
				return nil, badJSONPattern(ps.src, "empty selector step")
			}
			t.steps = append(t.steps, r[i+1:j])
			i = j
			continue
		case '[':
			j := strings.IndexByte(r[i:], ']')
			n, err := strconv.Atoi(r[i+1 : i+max(j, 1)])
			if j < 0 || err != nil || n < 0 {
				return nil, badJSONPattern(ps.src, "bad array index")
			}
			t.steps = append(t.steps, n)
			i += j + 1
			continue
		}
		break
	}
	ps.s = r[i:]
	switch {
	case ps.eat("IS TRUE"):
		t.op, t.is = "is", true
	case ps.eat("IS FALSE"):
		t.op, t.is = "is", false
	case ps.eat("IS NULL"):
		t.op, t.is = "is", nil
	case ps.eat("NOT EXISTS"):
		t.op = "missing"
	case ps.eat("EXISTS"):
		t.op = "exists"
	default:
		for _, op := range []string{"!=", "<=", ">=", "=", "<", ">"} {
			if ps.eat(op) {
				t.op = op
				break
			}
		}
		if t.op == "" {
			return nil, badJSONPattern(ps.src, "expected a comparison after the selector")
		}
		if err := ps.value(&t); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// value reads a comparison's value: "quoted", a number, or a bare word.
func (ps *jsonParser) value(t *jsonTest) error {
	r := ps.rest()
	if strings.HasPrefix(r, `"`) {
		var b strings.Builder
		j := 1
		for ; j < len(r) && r[j] != '"'; j++ {
			if r[j] == '\\' && j+1 < len(r) {
				j++
			}
			b.WriteByte(r[j])
		}
		if j == len(r) {
			return badJSONPattern(ps.src, "unterminated string")
		}
		t.str, ps.s = b.String(), r[j+1:]
	} else {
		j := 0
		for j < len(r) && (isWordByte(r[j]) || strings.IndexByte("-+.*:/@", r[j]) >= 0) {
			j++
		}
		if j == 0 {
			return badJSONPattern(ps.src, "expected a value")
		}
		word := r[:j]
		ps.s = r[j:]
		if f, err := strconv.ParseFloat(word, 64); err == nil {
			t.num = &f
		} else {
			t.str = word
		}
	}
	if t.num == nil && t.op != "=" && t.op != "!=" {
		return badJSONPattern(ps.src, "strings compare with = and != only")
	}
	return nil
}

func isWordByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
