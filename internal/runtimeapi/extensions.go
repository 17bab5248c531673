package runtimeapi

import (
	"context"
	"encoding/json"
	"errors"
	"icebox/internal/model"
	"net/http"
	"slices"
	"strings"
)

// Extensions is the Extensions API (2020-01-01) side of an environment
// (model.Env in icebox).
type Extensions interface {
	Register(name string, events []string) (string, model.FunctionInfo, error)
	ExtensionNext(ctx context.Context, id string) (*model.ExtensionEvent, error)
	ExtensionInitError(id, errorType string, body []byte) error
}

const (
	hdrExtensionName       = "Lambda-Extension-Name"
	hdrExtensionIdentifier = "Lambda-Extension-Identifier"
	hdrExtensionFeature    = "Lambda-Extension-Accept-Feature"
	hdrExtensionErrorType  = "Lambda-Extension-Function-Error-Type"
	// maxRegisterBody bounds a registration's body ({"events":[…]}).
	maxRegisterBody = 64 << 10
)

func (s *Server) routeExtensions(mux *http.ServeMux) {
	mux.HandleFunc("POST /2020-01-01/extension/register", s.register)
	mux.HandleFunc("GET /2020-01-01/extension/event/next", s.extensionNext)
	mux.HandleFunc("POST /2020-01-01/extension/init/error", s.extensionError)
	mux.HandleFunc("POST /2020-01-01/extension/exit/error", s.extensionError)
}

func (s *Server) register(w http.ResponseWriter, r *http.Request) {
	body, ok, err := readLimited(w, r, maxRegisterBody)
	var req struct {
		Events []string `json:"events"`
	}
	if err == nil && ok {
		err = json.Unmarshal(body, &req)
	}
	if err != nil || !ok {
		apiError(w, http.StatusForbidden, "InvalidRequestFormat", "the body must be JSON with an events list")
		return
	}
	id, fn, err := s.env.Register(r.Header.Get(hdrExtensionName), req.Events)
	if err != nil {
		extensionError(w, err)
		return
	}
	resp := struct {
		FunctionName    string `json:"functionName"`
		FunctionVersion string `json:"functionVersion"`
		Handler         string `json:"handler"`
		AccountID       string `json:"accountId,omitempty"`
	}{FunctionName: fn.Name, FunctionVersion: fn.Version, Handler: fn.Handler}
	if slices.Contains(splitList(r.Header.Get(hdrExtensionFeature)), "accountId") {
		resp.AccountID = fn.AccountID
	}
	w.Header().Set(hdrExtensionIdentifier, id)
	writeJSON(w, resp)
}

// splitList splits a comma-separated header value.
func splitList(v string) []string {
	parts := strings.Split(v, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

func (s *Server) extensionNext(w http.ResponseWriter, r *http.Request) {
	id, ok := extensionID(w, r)
	if !ok {
		return
	}
	ev, err := s.env.ExtensionNext(r.Context(), id)
	if err != nil {
		if r.Context().Err() == nil {
			extensionError(w, err)
		}
		return
	}
	type tracing struct {
		Type  string `json:"type"`
		Value string `json:"value"`
	}
	out := struct {
		EventType          string   `json:"eventType"`
		DeadlineMs         int64    `json:"deadlineMs"`
		RequestID          string   `json:"requestId,omitempty"`
		InvokedFunctionArn string   `json:"invokedFunctionArn,omitempty"`
		Tracing            *tracing `json:"tracing,omitempty"`
		ShutdownReason     string   `json:"shutdownReason,omitempty"`
	}{EventType: ev.Type, DeadlineMs: ev.Deadline.UnixMilli(), ShutdownReason: ev.Reason}
	if inv := ev.Invocation; inv != nil {
		out.DeadlineMs = inv.Deadline.UnixMilli()
		out.RequestID, out.InvokedFunctionArn = inv.RequestID, inv.FunctionARN
		out.Tracing = &tracing{Type: "X-Amzn-Trace-Id", Value: inv.TraceID}
	}
	writeJSON(w, out)
}

// extensionError is init/error and exit/error: the report's type is its
// Lambda-Extension-Function-Error-Type header, required.
func (s *Server) extensionError(w http.ResponseWriter, r *http.Request) {
	id, ok := extensionID(w, r)
	if !ok {
		return
	}
	typ := r.Header.Get(hdrExtensionErrorType)
	if typ == "" {
		apiError(w, http.StatusForbidden, model.ErrorTypeMissingHeader, "missing "+hdrExtensionErrorType+" header")
		return
	}
	_, body := errorReport(w, r, typ)
	if err := s.env.ExtensionInitError(id, typ, body); err != nil {
		extensionError(w, err)
		return
	}
	accepted(w)
}

// extensionID reads the Lambda-Extension-Identifier header, answering the
// refusal itself when it is missing.
func extensionID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.Header.Get(hdrExtensionIdentifier)
	if id == "" {
		apiError(w, http.StatusForbidden, model.ErrorTypeMissingHeader, "missing "+hdrExtensionIdentifier+" header")
		return "", false
	}
	return id, true
}

// extensionError answers an environment's refusal with Lambda's 403 and
// error type; anything else is the Runtime API's own failure.
func extensionError(w http.ResponseWriter, err error) {
	var xe *model.ExtensionError
	if errors.As(err, &xe) {
		apiError(w, http.StatusForbidden, xe.Type, xe.Msg)
		return
	}
	apiError(w, http.StatusInternalServerError, "ServiceException", err.Error())
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		apiError(w, http.StatusInternalServerError, "ServiceException", err.Error())
		return
	}
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}
