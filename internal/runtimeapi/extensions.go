package runtimeapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"

	"icebox/internal/model"
)

// Extensions is the Extensions API (2020-01-01) side of an environment
// (environment.Env in icebox).
type Extensions interface {
	Register(name string, events []string) (string, model.FunctionInfo, error)
	// ExtensionName is the name of the extension with this identifier.
	ExtensionName(id string) (string, error)
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

// Telemetry is the Telemetry API (2022-07-01) and Logs API (2020-08-15)
// of an environment (telemetry.Hub in icebox).
type Telemetry interface {
	// Subscribe adds the subscription of the extension named name, from a
	// request body sent to the API of schema api; an error is the
	// request's fault.
	Subscribe(name, api string, body []byte) error
	// ExtensionRegistered tells subscribers of an extension's registration.
	ExtensionRegistered(name string, events []string)
}

// ServeTelemetry makes the server answer the Telemetry and Logs APIs with
// t. It is called before Serve.
func (s *Server) ServeTelemetry(t Telemetry) { s.telemetry = t }

// maxSubscribeBody bounds a subscription's body.
const maxSubscribeBody = 64 << 10

func (s *Server) routeExtensions(mux *http.ServeMux) {
	mux.HandleFunc("PUT /2022-07-01/telemetry", func(w http.ResponseWriter, r *http.Request) { s.subscribe(w, r, "2022-07-01") })
	mux.HandleFunc("PUT /2020-08-15/logs", func(w http.ResponseWriter, r *http.Request) { s.subscribe(w, r, "2020-08-15") })
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
	if s.telemetry != nil {
		s.telemetry.ExtensionRegistered(r.Header.Get(hdrExtensionName), req.Events)
	}
	w.Header().Set(hdrExtensionIdentifier, id)
	writeJSON(w, resp)
}

// subscribe is a Telemetry or Logs API subscription by a registered
// extension: 200 "OK", or 400 with what is wrong.
func (s *Server) subscribe(w http.ResponseWriter, r *http.Request, api string) {
	id, ok := extensionID(w, r)
	if !ok {
		return
	}
	name, err := s.env.ExtensionName(id)
	if err != nil {
		extensionError(w, err)
		return
	}
	if s.telemetry == nil {
		apiError(w, http.StatusAccepted, "Telemetry.NotSupported", "Telemetry API is not supported")
		return
	}
	body, ok, err := readLimited(w, r, maxSubscribeBody)
	if err != nil || !ok {
		apiError(w, http.StatusBadRequest, "ValidationError", "the subscription body must be JSON of at most 64 KiB")
		return
	}
	if err := s.telemetry.Subscribe(name, api, body); err != nil {
		var xe *model.ExtensionError
		if errors.As(err, &xe) {
			// Past init: 403 Telemetry.SubscriptionClosed.
			extensionError(w, err)
			return
		}
		apiError(w, http.StatusBadRequest, "ValidationError", err.Error())
		return
	}
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, "OK")
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
