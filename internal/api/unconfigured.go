package api

import (
	"net/http"

	"icebox/internal/model"
)

// The reads deploy tools make on every refresh of a function, about
// features icebox does not have (code signing, runtime pinning, recursion
// control, event source mappings): each answers as Lambda answers for a function that has none of them
// configured, so that a tool reading them sees "nothing set", not an
// error. Writes of these features stay unknown operations.

func (s *Server) getFunctionCodeSigningConfig(w http.ResponseWriter, r *http.Request) error {
	fn, err := s.lookup(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"CodeSigningConfigArn": "", "FunctionName": fn.Name})
	return nil
}

type runtimeManagementConfig struct {
	FunctionArn       string  `json:"FunctionArn"`
	RuntimeVersionArn *string `json:"RuntimeVersionArn"` // null unless Manual
	UpdateRuntimeOn   string  `json:"UpdateRuntimeOn"`
}

func (s *Server) getRuntimeManagementConfig(w http.ResponseWriter, r *http.Request) error {
	fn, err := s.lookup(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, runtimeManagementConfig{FunctionArn: model.ARN(s.cfg.Region, s.cfg.AccountID, fn.Name), UpdateRuntimeOn: "Auto"})
	return nil
}

func (s *Server) getFunctionRecursionConfig(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.lookup(r); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"RecursiveLoop": "Terminate"})
	return nil
}

// listEventSourceMappings answers GET /2015-03-31/event-source-mappings:
// none exist. A FunctionName filter must still name a function.
func (s *Server) listEventSourceMappings(w http.ResponseWriter, r *http.Request) error {
	if ref := r.URL.Query().Get("FunctionName"); ref != "" {
		if _, _, err := s.invoker.Resolve(ref, ""); err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, map[string][]any{"EventSourceMappings": {}})
	return nil
}
