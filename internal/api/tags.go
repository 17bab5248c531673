package api

import (
	"fmt"
	"net/http"
	"strings"

	"icebox/internal/errdefs"
	"icebox/internal/invoke"
	"icebox/internal/model"
	"icebox/internal/policy"
)

// Tags: TagResource, UntagResource and ListTags on /2017-03-31/tags/{ARN}.
// The path's ARN is the pipeline's {name}, so it is resolved and
// authorized on the function like any other function path. Only functions
// are tagged here (icebox has no code signing configs or event source
// mappings), and only by their unqualified ARN, as on Lambda.

const tagsPath = "/2017-03-31/tags/{name}"

// resourceARNPattern is TagResource's Resource pattern, quoted in its
// validation message.
const resourceARNPattern = `arn:(aws[a-zA-Z-]*):lambda:[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}:(function:[a-zA-Z0-9-_]+(:(\$LATEST|[a-zA-Z0-9-_]+))?|code-signing-config:csc-[a-z0-9]{17}|event-source-mapping:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})`

// tagged is the function a tags path names: an ARN, never a bare name, and
// the function's own (unqualified) one.
func (s *Server) tagged(r *http.Request) (model.Function, error) {
	ref := r.PathValue("name")
	if !strings.HasPrefix(ref, "arn:") {
		return model.Function{}, fmt.Errorf("1 validation error detected: Value '%s' at 'resource' failed to satisfy constraint: Member must satisfy regular expression pattern: %s: %w", ref, resourceARNPattern, errdefs.ErrInvalid)
	}
	if _, q, err := invoke.ParseFunctionRef(ref, s.cfg.Region, s.cfg.AccountID); err == nil && q != "" {
		return model.Function{}, fmt.Errorf("Tags apply to a function, not to a version or alias: use the unqualified ARN (without :%s): %w", q, errdefs.ErrInvalid)
	}
	return s.lookup(r)
}

type tagsDocument struct {
	Tags map[string]string `json:"Tags"`
}

func (s *Server) tagResource(w http.ResponseWriter, r *http.Request) error {
	var in tagsDocument
	if err := readJSON(r, &in); err != nil {
		return err
	}
	fn, err := s.tagged(r)
	if err != nil {
		return err
	}
	if in.Tags == nil {
		return validation("null", "tags", "Member must not be null")
	}
	if _, err := s.functions.Tag(r.Context(), fn.Name, in.Tags); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) untagResource(w http.ResponseWriter, r *http.Request) error {
	fn, err := s.tagged(r)
	if err != nil {
		return err
	}
	keys, ok := r.URL.Query()["tagKeys"]
	if !ok {
		return validation("null", "tagKeys", "Member must not be null")
	}
	if _, err := s.functions.Untag(r.Context(), fn.Name, keys); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listTags(w http.ResponseWriter, r *http.Request) error {
	fn, err := s.tagged(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, tagsDocument{Tags: tagsOf(fn)})
	return nil
}

// tagsOf is a function's tags as Lambda writes them: {} when it has none.
func tagsOf(fn model.Function) map[string]string {
	if fn.Tags == nil {
		return map[string]string{}
	}
	return fn.Tags
}

// mayListTags says whether GetFunction shows r's caller the function's tags:
// since 2024 Lambda includes them only for a caller allowed lambda:ListTags
// on the function, and answers without them otherwise.
func (s *Server) mayListTags(r *http.Request, fn model.Function) bool {
	return s.authorizeOn(r, "lambda:ListTags", fn.Name, fn.Policy) == nil
}

// authorizeOn decides action on the function name for r's caller, for
// actions an operation needs beyond its own (CreateFunction with Tags
// needs lambda:TagResource, as on Lambda).
func (s *Server) authorizeOn(r *http.Request, action, name string, fnPolicy *policy.Document) error {
	c, ok := callerOf(r)
	if !ok || c.id.Root {
		return nil
	}
	return s.decide(c.id, action, model.ARN(s.cfg.Region, s.cfg.AccountID, name), fnPolicy)
}
