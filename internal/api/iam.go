package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"

	"icebox/internal/auth"
	"icebox/internal/errdefs"
	"icebox/internal/policy"
)

// icebox's own identity API (`icebox keys`, `icebox roles`): access keys
// with identity policies and execution roles. Root, or a caller whose
// policy allows the icebox:* action, may use it.

type identityInput struct {
	UserName string          `json:"UserName"`
	Policy   json.RawMessage `json:"Policy"`
}

// parsePolicy accepts a policy as a JSON object or as a string holding one
// (the way IAM's APIs take it).
func parsePolicy(raw json.RawMessage) (policy.Document, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return policy.Document{}, validation("null", "policy", "Member must not be null")
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return policy.Document{}, fmt.Errorf("policy: %v: %w", err, errdefs.ErrInvalid)
		}
		raw = []byte(s)
	}
	d, err := policy.Parse(raw)
	if err != nil {
		return policy.Document{}, fmt.Errorf("%s: %w", err.Error(), errdefs.ErrInvalid)
	}
	return d, nil
}

type accessKeyOutput struct {
	AccessKeyID     string          `json:"AccessKeyId"`
	SecretAccessKey string          `json:"SecretAccessKey,omitempty"`
	UserName        string          `json:"UserName"`
	Arn             string          `json:"Arn"`
	Policy          policy.Document `json:"Policy"`
	CreateDate      string          `json:"CreateDate"`
}

func (s *Server) accessKeyOut(k auth.AccessKey) accessKeyOutput {
	return accessKeyOutput{k.AccessKeyID, k.SecretAccessKey, k.UserName, s.auth.UserARN(k.UserName), k.Policy, k.Created.Format(lambdaTime)}
}

// readIdentity reads a key or role request and its policy.
func readIdentity(w http.ResponseWriter, r *http.Request) (identityInput, policy.Document, error) {
	var in identityInput
	if err := readJSON(r, &in); err != nil {
		return in, policy.Document{}, err
	}
	doc, err := parsePolicy(in.Policy)
	return in, doc, err
}

func (s *Server) createAccessKey(w http.ResponseWriter, r *http.Request) error {
	in, doc, err := readIdentity(w, r)
	if err != nil {
		return err
	}
	k, err := s.auth.CreateAccessKey(r.Context(), in.UserName, doc)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"AccessKey": s.accessKeyOut(k)})
	return nil
}

func (s *Server) listAccessKeys(w http.ResponseWriter, r *http.Request) error {
	out := []accessKeyOutput{}
	for _, k := range s.auth.ListAccessKeys() {
		out = append(out, s.accessKeyOut(k))
	}
	writeJSON(w, http.StatusOK, map[string]any{"AccessKeys": out})
	return nil
}

func (s *Server) deleteAccessKey(w http.ResponseWriter, r *http.Request) error {
	if err := s.auth.DeleteAccessKey(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type roleOutput struct {
	RoleName   string          `json:"RoleName"`
	Arn        string          `json:"Arn"`
	Policy     policy.Document `json:"Policy"`
	CreateDate string          `json:"CreateDate"`
}

func (s *Server) roleOut(r auth.Role) roleOutput {
	return roleOutput{r.Name, s.auth.RoleARN(r.Name), r.Policy, r.Created.Format(lambdaTime)}
}

func (s *Server) putRole(w http.ResponseWriter, r *http.Request) error {
	_, doc, err := readIdentity(w, r)
	if err != nil {
		return err
	}
	role, err := s.auth.PutRole(r.Context(), r.PathValue("role"), doc)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"Role": s.roleOut(role)})
	return nil
}

func (s *Server) listRoles(w http.ResponseWriter, r *http.Request) error {
	out := []roleOutput{}
	for _, role := range s.auth.ListRoles() {
		out = append(out, s.roleOut(role))
	}
	writeJSON(w, http.StatusOK, map[string]any{"Roles": out})
	return nil
}

func (s *Server) deleteRole(w http.ResponseWriter, r *http.Request) error {
	if err := s.auth.DeleteRole(r.Context(), r.PathValue("role")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
