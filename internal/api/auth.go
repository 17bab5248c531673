package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"icebox/internal/auth"
	"icebox/internal/errdefs"
	"icebox/internal/invoke"
	"icebox/internal/model"
	"icebox/internal/policy"
)

// Every request but /metrics and presigned code downloads is
// authenticated (SigV4) in ServeHTTP, then authorized per operation by the
// wrapper handle installs: the caller's identity policies and, for a
// function, its resource policy, decide.

type callerKey struct{}

// caller is what authentication leaves in a request's context: who signed
// it, and the body the signature covered (read once, here).
type caller struct {
	id   auth.Identity
	body []byte
}

// callerOf returns the request's authenticated caller; ok is false when
// the request was not authenticated (NoAuth, or a public path).
func callerOf(r *http.Request) (caller, bool) {
	c, ok := r.Context().Value(callerKey{}).(caller)
	return c, ok
}

// authenticate checks r's signature and returns r carrying the identity.
// The body is read here (the signature covers it) and handed on in memory.
func (s *Server) authenticate(r *http.Request) (*http.Request, error) {
	body, err := readBody(r, maxCodeRequestBytes)
	if err != nil {
		return r, fmt.Errorf("read request body: %w", errdefs.ErrInvalidContent)
	}
	if len(body) > maxCodeRequestBytes {
		return r, fmt.Errorf("Request must be smaller than %d bytes for the %s operation: %w", maxCodeRequestBytes, operation(r), errdefs.ErrTooLarge)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	sum := sha256.Sum256(body)
	id, err := s.auth.Authenticate(r, hex.EncodeToString(sum[:]))
	if err != nil {
		return r, err
	}
	return r.WithContext(context.WithValue(r.Context(), callerKey{}, caller{id, body})), nil
}

// readBody reads r's body, at most limit+1 bytes (one past the limit, so an
// oversized body is seen as such). A body of announced size goes into one
// buffer of that size (net/http holds the body to it) instead of one grown
// from 512 bytes.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	if n := r.ContentLength; n >= 0 && n <= limit {
		body := make([]byte, n)
		_, err := io.ReadFull(r.Body, body)
		return body, err
	}
	return io.ReadAll(io.LimitReader(r.Body, limit+1))
}

// handle registers h for pattern behind an authorization check for action.
func (s *Server) handle(pattern, action string, h http.HandlerFunc) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if err := s.authorize(r, action); err != nil {
			s.fail(w, r, err)
			return
		}
		h(w, r)
	})
}

// authorize decides whether the caller may do action here. The resource is
// the function named in the path (or, for CreateFunction, in the body).
func (s *Server) authorize(r *http.Request, action string) error {
	c, ok := callerOf(r)
	if !ok || c.id.Root {
		return nil // authentication is off, or the caller is root
	}
	resource, fnPolicy := "*", (*policy.Document)(nil)
	name := r.PathValue("name")
	if action == "lambda:CreateFunction" {
		var in struct{ FunctionName string }
		_ = json.Unmarshal(c.body, &in)
		name = in.FunctionName
	}
	if name != "" {
		if n, _, err := invoke.ParseFunctionRef(name, s.cfg.Region, s.cfg.AccountID); err == nil {
			name = n
		}
		resource = model.ARN(s.cfg.Region, s.cfg.AccountID, name)
		if fn, err := s.functions.Get(name); err == nil {
			fnPolicy = fn.Policy
		}
	}
	return decide(c.id, action, resource, fnPolicy, s.cfg.AccountID)
}

func decide(id auth.Identity, action, resource string, fnPolicy *policy.Document, account string) error {
	d := policy.Evaluate(policy.Request{Principal: id.ARN, Account: account, Action: action, Resource: resource}, id.Policies, fnPolicy)
	switch d {
	case policy.Allowed:
		return nil
	case policy.ExplicitDeny:
		return &errdefs.AuthError{Kind: errdefs.AuthDenied, Message: fmt.Sprintf("User: %s is not authorized to perform: %s on resource: %s with an explicit deny", id.ARN, action, resource)}
	}
	return &errdefs.AuthError{Kind: errdefs.AuthDenied, Message: fmt.Sprintf("User: %s is not authorized to perform: %s on resource: %s because no identity-based policy allows the %s action", id.ARN, action, resource, action)}
}

// authorizeLogs decides a CloudWatch Logs call: the action is the target's
// operation, the resource the log group named in the body.
func (s *Server) authorizeLogs(r *http.Request) error {
	c, ok := callerOf(r)
	if !ok || c.id.Root {
		return nil
	}
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "Logs_20140328.")
	var in struct {
		LogGroupName string `json:"logGroupName"`
	}
	_ = json.Unmarshal(c.body, &in)
	resource := "*"
	if in.LogGroupName != "" {
		resource = fmt.Sprintf("arn:aws:logs:%s:%s:log-group:%s:*", s.cfg.Region, s.cfg.AccountID, in.LogGroupName)
	}
	return decide(c.id, "logs:"+op, resource, nil, s.cfg.AccountID)
}

// authCode is the AWS error code for an authentication failure.
func authCode(err error) (string, bool) {
	var ae *errdefs.AuthError
	if !errors.As(err, &ae) {
		return "", false
	}
	switch ae.Kind {
	case errdefs.AuthMissing:
		return "MissingAuthenticationTokenException", true
	case errdefs.AuthIncomplete:
		return "IncompleteSignatureException", true
	case errdefs.AuthUnknownKey:
		return "UnrecognizedClientException", true
	case errdefs.AuthExpiredToken:
		return "ExpiredTokenException", true
	case errdefs.AuthDenied:
		return "AccessDeniedException", true
	}
	return "InvalidSignatureException", true
}

// failLogs writes an error the way the CloudWatch Logs API (JSON 1.1) does:
// 400 with __type.
func failLogs(w http.ResponseWriter, err error) {
	code, ok := authCode(err)
	status := http.StatusBadRequest
	if !ok {
		code, status = "ServiceUnavailableException", http.StatusInternalServerError
		if errors.Is(err, errdefs.ErrTooLarge) {
			code, status = "RequestEntityTooLargeException", http.StatusRequestEntityTooLarge
		}
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", code)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": message(err)})
}
