package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"

	"icebox/internal/errdefs"
	"icebox/internal/model"
	"icebox/internal/policy"
)

type addPermissionInput struct {
	StatementID   string `json:"StatementId"`
	Action        string `json:"Action"`
	Principal     string `json:"Principal"`
	SourceArn     string `json:"SourceArn"`
	SourceAccount string `json:"SourceAccount"`
	RevisionID    string `json:"RevisionId"`
	// FunctionUrlAuthType limits the statement to calls through function
	// URLs of that auth type (condition lambda:FunctionUrlAuthType).
	FunctionURLAuthType string `json:"FunctionUrlAuthType"`
	// InvokedViaFunctionUrl limits an InvokeFunction statement to calls
	// made through a function URL (condition lambda:InvokedViaFunctionUrl):
	// left out, the statement would grant every caller it names.
	InvokedViaFunctionURL bool `json:"InvokedViaFunctionUrl"`
}

// Patterns are compiled on first use, not at package init: every sandbox's
// init re-executes this binary and would build and keep them for nothing.
var (
	sidPattern    = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9-_.]{1,100}$`) })
	actionPattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(lambda:[*]|lambda:[a-zA-Z]+|[*])$`) })
	accountID     = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^\d{12}$`) })
)

func validation(value, field, constraint string) error {
	return fmt.Errorf("1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: %s: %w", value, field, constraint, errdefs.ErrInvalid)
}

// statement turns AddPermission's input into a policy statement, the way
// Lambda writes it: a 12-digit account becomes its root ARN, a
// *.amazonaws.com name a service principal, SourceArn/SourceAccount
// conditions.
func (in addPermissionInput) statement(resource string) (policy.Statement, error) {
	switch {
	case !sidPattern().MatchString(in.StatementID):
		return policy.Statement{}, validation(in.StatementID, "statementId", "Member must satisfy regular expression pattern: ([a-zA-Z0-9-_.]+)")
	case !actionPattern().MatchString(in.Action):
		return policy.Statement{}, validation(in.Action, "action", "Member must satisfy regular expression pattern: (lambda:[*]|lambda:[a-zA-Z]+|[*])")
	case in.Principal == "":
		return policy.Statement{}, validation("null", "principal", "Member must not be null")
	case in.FunctionURLAuthType != "" && in.FunctionURLAuthType != model.URLAuthNone && in.FunctionURLAuthType != model.URLAuthIAM:
		return policy.Statement{}, validation(in.FunctionURLAuthType, "functionUrlAuthType", "Member must satisfy enum value set: [NONE, AWS_IAM]")
	}
	p := &policy.Principal{}
	switch {
	case in.Principal == "*":
		p.Any = true
	case accountID().MatchString(in.Principal):
		p.AWS = policy.Values{"arn:aws:iam::" + in.Principal + ":root"}
	case strings.HasPrefix(in.Principal, "arn:"):
		p.AWS = policy.Values{in.Principal}
	case strings.Contains(in.Principal, "."):
		p.Service = policy.Values{in.Principal}
	default:
		return policy.Statement{}, fmt.Errorf("The provided principal was invalid. Please check the principal and try again.: %w", errdefs.ErrInvalid)
	}
	st := policy.Statement{Sid: in.StatementID, Effect: policy.Allow, Principal: p, Action: policy.Values{in.Action}, Resource: policy.Values{resource}}
	cond := map[string]map[string]policy.Values{}
	if in.SourceArn != "" {
		cond["ArnLike"] = map[string]policy.Values{"AWS:SourceArn": {in.SourceArn}}
	}
	equals := map[string]policy.Values{}
	if in.SourceAccount != "" {
		equals["AWS:SourceAccount"] = policy.Values{in.SourceAccount}
	}
	if in.FunctionURLAuthType != "" {
		equals["lambda:FunctionUrlAuthType"] = policy.Values{in.FunctionURLAuthType}
	}
	if len(equals) > 0 {
		cond["StringEquals"] = equals
	}
	if in.InvokedViaFunctionURL {
		cond["Bool"] = map[string]policy.Values{"lambda:InvokedViaFunctionUrl": {"true"}}
	}
	if len(cond) > 0 {
		st.Condition = cond
	}
	return st, nil
}

func (s *Server) addPermission(w http.ResponseWriter, r *http.Request) error {
	var in addPermissionInput
	if err := readJSON(r, &in); err != nil {
		return err
	}
	fn, err := s.lookup(r)
	if err != nil {
		return err
	}
	if fn.Qualifier == model.LatestVersion {
		return fmt.Errorf("We currently do not support adding policies for $LATEST.: %w", errdefs.ErrInvalid)
	}
	// A qualified permission names, and admits, only the qualified ARN.
	st, err := in.statement(fn.QualifiedARN(s.cfg.Region, s.cfg.AccountID))
	if err != nil {
		return err
	}
	if _, err := s.functions.AddPermission(r.Context(), fn.Name, fn.Qualifier, in.RevisionID, st); err != nil {
		return err
	}
	b, _ := json.Marshal(st)
	writeJSON(w, http.StatusCreated, map[string]string{"Statement": string(b)})
	return nil
}

func (s *Server) getPolicy(w http.ResponseWriter, r *http.Request) error {
	fn, err := s.lookup(r)
	if err != nil {
		return err
	}
	if fn.Policy == nil {
		return fmt.Errorf("The resource you requested does not exist.: %w", errdefs.ErrNotFound)
	}
	// The revision that guards the policy is the alias's own for an alias
	// (a view carries its version's).
	rev := fn.RevisionID
	if fn.IsAliasView() {
		if rec, err := s.functions.Get(fn.Name); err == nil {
			if a := rec.AliasNamed(fn.Qualifier); a != nil {
				rev = a.RevisionID
			}
		}
	}
	b, _ := json.Marshal(fn.Policy)
	writeJSON(w, http.StatusOK, map[string]string{"Policy": string(b), "RevisionId": rev})
	return nil
}

func (s *Server) removePermission(w http.ResponseWriter, r *http.Request) error {
	fn, err := s.lookup(r)
	if err != nil {
		return err
	}
	if err := s.functions.RemovePermission(r.Context(), fn.Name, fn.Qualifier, r.PathValue("sid"), r.URL.Query().Get("RevisionId")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
