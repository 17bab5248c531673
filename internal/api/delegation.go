package api

import (
	"net/http"

	"icebox/internal/auth"
	"icebox/internal/invoke"
	"icebox/internal/model"
	"icebox/internal/policy"
)

// Some settings make icebox act later with rights the caller hands over:
// a function's role is what its code runs as, and a destination or
// dead-letter target is invoked on the function's behalf. A caller may
// only hand over what it holds, or it uses icebox as a confused deputy:
// passing a role needs iam:PassRole on it (IAM's rule), naming a target
// needs lambda:InvokeFunction on it. Root, and every caller when
// authentication is off, is not checked.

// passedToService is the iam:PassedToService a role passed to Lambda
// carries, for policies that allow passing a role only to Lambda.
const passedToService = "lambda.amazonaws.com"

// authorizePassRole decides whether r's caller may pass role (an ARN as
// given in the request) to a function. Only the caller's identity policies
// count: no resource policy can grant an IAM action.
func (s *Server) authorizePassRole(r *http.Request, role string) error {
	c, ok := callerOf(r)
	if !ok || c.id.Root {
		return nil
	}
	name, err := auth.RoleName(role)
	if err != nil {
		return err
	}
	// An environment gets the credentials of the role of that name in this
	// account, whatever path or account the ARN spells (icebox roles have
	// neither): decide on that role's ARN, or role/bob-x/admin would pass
	// admin to a caller allowed role/bob-*.
	req := policy.Request{Principal: c.id.ARN, Account: s.cfg.AccountID, Action: "iam:PassRole", Resource: s.auth.RoleARN(name),
		Context: map[string]string{"iam:passedtoservice": passedToService}}
	return decideRequest(c.id, req, nil)
}

// allowTarget checks a destination or dead-letter target (field names it
// in errors): it must be a function icebox can deliver to, and r's caller
// must be allowed to invoke it, decided as an Invoke of it would be (the
// caller's identity policies and the target's resource policy).
func (s *Server) allowTarget(r *http.Request, field, arn string) error {
	if err := s.checkTarget(field, arn); err != nil || arn == "" {
		return err
	}
	c, ok := callerOf(r)
	if !ok || c.id.Root {
		return nil
	}
	name, _, err := invoke.ParseFunctionRef(arn, s.cfg.Region, s.cfg.AccountID)
	if err != nil {
		return err
	}
	var fnPolicy *policy.Document
	if fn, err := s.functions.Get(name); err == nil {
		fnPolicy = fn.Policy
	}
	return s.decide(c.id, "lambda:InvokeFunction", model.ARN(s.cfg.Region, s.cfg.AccountID, name), fnPolicy)
}
