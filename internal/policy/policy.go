// Package policy parses and evaluates IAM-style policy documents: identity
// policies attached to access keys and execution roles, and the resource
// policies AddPermission builds on a function. It does no I/O.
//
// Evaluation follows IAM's order for a single account: an explicit Deny in
// any policy wins; otherwise an Allow in an identity policy, or in the
// resource policy for a statement naming the caller, allows; otherwise the
// request is implicitly denied.
package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Effect is Allow or Deny.
type Effect string

const (
	Allow Effect = "Allow"
	Deny  Effect = "Deny"
)

// Document is a policy document.
type Document struct {
	Version   string      `json:"Version,omitempty"`
	ID        string      `json:"Id,omitempty"`
	Statement []Statement `json:"Statement"`
}

// Statement is one rule. Principal is only meaningful in resource policies.
type Statement struct {
	Sid       string                       `json:"Sid,omitempty"`
	Effect    Effect                       `json:"Effect"`
	Principal *Principal                   `json:"Principal,omitempty"`
	Action    Values                       `json:"Action,omitempty"`
	NotAction Values                       `json:"NotAction,omitempty"`
	Resource  Values                       `json:"Resource,omitempty"`
	Condition map[string]map[string]Values `json:"Condition,omitempty"`
}

// Principal is "*" or {"AWS": [...], "Service": [...]}.
type Principal struct {
	Any     bool
	AWS     Values
	Service Values
}

// Values is a string or a list of strings in JSON.
type Values []string

func (v *Values) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*v = Values{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return errors.New("must be a string or a list of strings")
	}
	*v = l
	return nil
}

// MarshalJSON writes one value as a string, the way AWS writes policies.
func (v Values) MarshalJSON() ([]byte, error) {
	if len(v) == 1 {
		return json.Marshal(v[0])
	}
	return json.Marshal([]string(v))
}

func (p *Principal) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if s != "*" {
			return fmt.Errorf("Principal %q: must be \"*\" or an object", s)
		}
		p.Any = true
		return nil
	}
	var m struct {
		AWS     Values `json:"AWS"`
		Service Values `json:"Service"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return errors.New("Principal must be \"*\" or an object with AWS or Service")
	}
	p.AWS, p.Service = m.AWS, m.Service
	return nil
}

func (p Principal) MarshalJSON() ([]byte, error) {
	if p.Any {
		return []byte(`"*"`), nil
	}
	m := map[string]any{}
	for k, v := range map[string]Values{"AWS": p.AWS, "Service": p.Service} {
		switch len(v) {
		case 0:
		case 1:
			m[k] = v[0]
		default:
			m[k] = []string(v)
		}
	}
	return json.Marshal(m)
}

// MaxDocumentBytes bounds a policy document (IAM's managed-policy limit).
const MaxDocumentBytes = 6144

// Parse reads and validates a policy document. The error names what is wrong.
func Parse(b []byte) (Document, error) {
	var d Document
	if len(b) > MaxDocumentBytes {
		return d, fmt.Errorf("policy document is %d bytes; the limit is %d", len(b), MaxDocumentBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return Document{}, fmt.Errorf("policy document: %v", err)
	}
	if dec.More() {
		return Document{}, errors.New("policy document: trailing data after the JSON object")
	}
	return d, d.Validate()
}

// Validate checks a document's statements.
func (d Document) Validate() error {
	if d.Version != "" && d.Version != "2012-10-17" && d.Version != "2008-10-17" {
		return fmt.Errorf("policy document: unknown Version %q", d.Version)
	}
	if len(d.Statement) == 0 {
		return errors.New("policy document: no Statement")
	}
	for i, s := range d.Statement {
		if err := s.validate(); err != nil {
			return fmt.Errorf("policy document: statement %d: %w", i, err)
		}
	}
	return nil
}

func (s Statement) validate() error {
	switch {
	case s.Effect != Allow && s.Effect != Deny:
		return fmt.Errorf("Effect must be Allow or Deny, not %q", s.Effect)
	case len(s.Action) == 0 && len(s.NotAction) == 0:
		return errors.New("Action or NotAction is required")
	case len(s.Action) > 0 && len(s.NotAction) > 0:
		return errors.New("Action and NotAction cannot both be set")
	case len(s.Resource) == 0:
		return errors.New("Resource is required")
	}
	for _, a := range append(append(Values{}, s.Action...), s.NotAction...) {
		if a != "*" && !strings.Contains(a, ":") {
			return fmt.Errorf("Action %q must look like service:Operation", a)
		}
	}
	for op := range s.Condition {
		if _, ok := conditions[op]; !ok {
			return fmt.Errorf("condition operator %q is not supported", op)
		}
	}
	return nil
}

// Request is what is being asked: who does which action on which resource.
type Request struct {
	// Principal is the caller's ARN (user/…, assumed-role/…, or the account root).
	Principal string
	// Account is the caller's account id.
	Account string
	Action  string
	// Resource is the ARN acted on, or "*" for account-level actions.
	Resource string
	// Context holds condition keys (aws:SourceArn …); absent keys never match.
	Context map[string]string
}

// Decision is the outcome of evaluating a request.
type Decision int

const (
	ImplicitDeny Decision = iota
	Allowed
	ExplicitDeny
)

// Evaluate decides req against the caller's identity policies and the
// resource's policy (nil when it has none).
func Evaluate(req Request, identity []Document, resource *Document) Decision {
	allowed := false
	for _, d := range identity {
		for _, s := range d.Statement {
			if !s.matches(req) {
				continue
			}
			if s.Effect == Deny {
				return ExplicitDeny
			}
			allowed = true
		}
	}
	if resource != nil {
		for _, s := range resource.Statement {
			if !s.matches(req) || !s.namesPrincipal(req) {
				continue
			}
			if s.Effect == Deny {
				return ExplicitDeny
			}
			allowed = true
		}
	}
	if allowed {
		return Allowed
	}
	return ImplicitDeny
}

func (s Statement) matches(req Request) bool {
	if len(s.Action) > 0 && !anyMatch(s.Action, req.Action, true) {
		return false
	}
	if len(s.NotAction) > 0 && anyMatch(s.NotAction, req.Action, true) {
		return false
	}
	if !anyMatch(s.Resource, req.Resource, false) {
		return false
	}
	for op, keys := range s.Condition {
		for key, want := range keys {
			got, ok := req.Context[strings.ToLower(key)]
			if !ok || !conditions[op](want, got) {
				return false
			}
		}
	}
	return true
}

// namesPrincipal reports whether a resource-policy statement grants to the
// caller directly. A statement naming the caller's whole account delegates
// to the account's identity policies (as IAM does within one account), so it
// does not grant by itself. A statement naming a role grants to every
// session of it, as in IAM (a function calls with its role's session).
func (s Statement) namesPrincipal(req Request) bool {
	if s.Principal == nil {
		return false
	}
	if s.Principal.Any {
		return true
	}
	role := sessionRole(req.Principal)
	for _, p := range s.Principal.AWS {
		if p == "*" || p == req.Principal || (role != "" && p == role) {
			return true
		}
	}
	return false
}

// sessionRole is the role ARN of an assumed-role session ARN
// (arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION → arn:aws:iam::ACCOUNT:role/NAME),
// or "" for any other principal.
func sessionRole(principal string) string {
	rest, ok := strings.CutPrefix(principal, "arn:aws:sts::")
	if !ok {
		return ""
	}
	account, path, ok := strings.Cut(rest, ":assumed-role/")
	if !ok {
		return ""
	}
	name, session, ok := strings.Cut(path, "/")
	if !ok || name == "" || session == "" {
		return ""
	}
	return "arn:aws:iam::" + account + ":role/" + name
}

var conditions = map[string]func(want Values, got string) bool{
	"StringEquals": func(w Values, g string) bool { return contains(w, g) },
	"Bool": func(w Values, g string) bool {
		return slices.ContainsFunc(w, func(v string) bool { return strings.EqualFold(v, g) })
	},
	"StringNotEquals": func(w Values, g string) bool { return !contains(w, g) },
	"StringLike":      func(w Values, g string) bool { return anyMatch(w, g, false) },
	"ArnLike":         func(w Values, g string) bool { return anyMatch(w, g, false) },
	"ArnEquals":       func(w Values, g string) bool { return contains(w, g) },
}

func contains(l Values, s string) bool {
	for _, v := range l {
		if v == s {
			return true
		}
	}
	return false
}

func anyMatch(patterns Values, s string, fold bool) bool {
	for _, p := range patterns {
		if fold {
			if Match(strings.ToLower(p), strings.ToLower(s)) {
				return true
			}
		} else if Match(p, s) {
			return true
		}
	}
	return false
}

// Match reports whether s matches pattern, where * matches any run of
// characters and ? any one character (IAM's wildcards).
func Match(pattern, s string) bool {
	// Iterative matching with one backtrack point: linear in practice and
	// never exponential, whatever the pattern.
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
