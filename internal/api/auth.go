package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"icebox/internal/auth"
	"icebox/internal/errdefs"
	"icebox/internal/invoke"
	"icebox/internal/logs"
	"icebox/internal/model"
	"icebox/internal/policy"
)

// authorize decides whether the caller may do action here. The resource is
// the function named in the path (or, for CreateFunction, in the body), or
// the layer version (with its policy) or layer a layer path names.
func (s *Server) authorize(r *http.Request, action string) error {
	c, ok := callerOf(r)
	if !ok || c.id.Root {
		return nil // authentication is off, or the caller is root
	}
	name, fnPolicy := c.target.name, c.target.fn.Policy
	if action == "lambda:CreateFunction" {
		var in struct{ FunctionName string }
		_ = json.Unmarshal(c.body, &in)
		name, _, _ = invoke.ParseFunctionRef(in.FunctionName, s.cfg.Region, s.cfg.AccountID)
	}
	resource := "*"
	if name != "" {
		resource = model.ARN(s.cfg.Region, s.cfg.AccountID, name)
	}
	if q := c.target.fn.Qualifier; c.target.err == nil && q != "" && q != model.LatestVersion {
		// A version or alias is its own resource, with its own policy.
		resource = c.target.fn.QualifiedARN(s.cfg.Region, s.cfg.AccountID)
	}
	if strings.HasPrefix(r.URL.Path, layersPath) || strings.HasPrefix(r.URL.Path, "/icebox/v1/layers/") {
		resource, fnPolicy = s.layerResource(r, action)
	}
	return s.decide(c.id, action, resource, fnPolicy)
}

// decide is the caller's answer to req, from its identity policies and,
// for a function, the function's resource policy: nil when allowed, else
// IAM's AccessDenied message.
func (s *Server) decide(id auth.Identity, action, resource string, fnPolicy *policy.Document) error {
	return decideRequest(id, policy.Request{Principal: id.ARN, Account: s.cfg.AccountID, Action: action, Resource: resource}, fnPolicy)
}

func decideRequest(id auth.Identity, req policy.Request, fnPolicy *policy.Document) error {
	switch policy.Evaluate(req, id.Policies, fnPolicy) {
	case policy.Allowed:
		return nil
	case policy.ExplicitDeny:
		return &errdefs.AuthError{Kind: errdefs.AuthDenied, Message: fmt.Sprintf("User: %s is not authorized to perform: %s on resource: %s with an explicit deny", id.ARN, req.Action, req.Resource)}
	}
	return &errdefs.AuthError{Kind: errdefs.AuthDenied, Message: fmt.Sprintf("User: %s is not authorized to perform: %s on resource: %s because no identity-based policy allows the %s action", id.ARN, req.Action, req.Resource, req.Action)}
}

// authorizeLogs decides a CloudWatch Logs call: the action is the target's
// operation, the resource the log group the call acts on.
func (s *Server) authorizeLogs(r *http.Request) error {
	c, ok := callerOf(r)
	if !ok || c.id.Root {
		return nil
	}
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), logs.TargetPrefix)
	// A group named badly fails the call itself; it is still decided on
	// every group.
	group, _ := logs.RequestGroup(c.body)
	resource := fmt.Sprintf("arn:aws:logs:%s:%s:log-group:*", s.cfg.Region, s.cfg.AccountID)
	if group != "" {
		resource = fmt.Sprintf("arn:aws:logs:%s:%s:log-group:%s:*", s.cfg.Region, s.cfg.AccountID, group)
	}
	return s.decide(c.id, "logs:"+op, resource, nil)
}

// authorizeLogGroup lets a function write its logs into a group other than
// its own only for a caller allowed logs:PutLogEvents on that group: on
// Lambda the execution role needs that permission, and without the check a
// function could slip records into any other function's logs.
func (s *Server) authorizeLogGroup(r *http.Request, fn model.Function) error {
	group := fn.Logging.Group(fn.Name)
	if group == model.LogGroupName(fn.Name) {
		return nil
	}
	c, ok := callerOf(r)
	if !ok || c.id.Root {
		return nil
	}
	return s.decide(c.id, "logs:PutLogEvents", fmt.Sprintf("arn:aws:logs:%s:%s:log-group:%s:*", s.cfg.Region, s.cfg.AccountID, group), nil)
}
