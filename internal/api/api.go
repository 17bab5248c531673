// Package api serves Lambda's REST API (and mounts the CloudWatch Logs API)
// on one HTTP handler. It is the only package that knows HTTP status codes
// and AWS error codes: errors arrive classified by errdefs and are
// translated here, once.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"icebox/internal/console"
	"icebox/internal/errdefs"
	"icebox/internal/logs"
	"icebox/internal/membership"
	"icebox/internal/model"
)

// Config configures the API.
type Config struct {
	Region    string
	AccountID string
	// NoAuth turns SigV4 checking off: every caller is treated as root.
	NoAuth bool
	// MetricsAuth requires a signature (and icebox:GetMetrics) for /metrics.
	MetricsAuth bool
	// BodyBudget bounds the request body bytes held at once, over every
	// caller of the API, and again over every caller of function URLs.
	// Default DefaultBodyBudget.
	BodyBudget int64
	// MaxUnauthenticated bounds open connections that have not yet sent a
	// signed request. Default DefaultMaxUnauthenticated.
	MaxUnauthenticated int
	// URLPort is the function URL listener's port, named in every URL.
	URLPort int
}

// Server is the HTTP front of icebox.
type Server struct {
	cfg        Config
	functions  Functions
	invoker    Invoker
	auth       Identities
	networks   Networks // nil: no networks (SetNetworks)
	account    Account
	logsAPI    http.Handler
	console    *console.Console
	log        *slog.Logger
	mux        *http.ServeMux
	bodyBudget *budget
	conns      *connGuard
	// urlConns guards the function URL listener's connections and urlBodies
	// its request bodies (a budget of its own: a public URL's callers
	// cannot starve the API); urls finds the function a URL id belongs to.
	urlConns  *connGuard
	urlBodies *budget
	urls      urlIndex
	// environments counts environments by state, for the status page.
	environments func() map[string]int
	// environmentList lists environments, for the status page.
	environmentList func() []EnvironmentStatus
	// provisioned reports provisioning progress; nil: none is made.
	provisioned ProvisionedStatus
	// notReady and nodes serve /readyz and the status page's node list
	// (health.go); nil: always ready, no list.
	notReady func() string
	nodes    func(ctx context.Context) ([]membership.Node, error)
}

// Body limits per operation: Lambda's for code and payloads; every other
// operation takes a small JSON document.
const (
	smallBody = 1 << 16
	// Lambda's limit on a CreateFunction / UpdateFunctionCode request: a
	// 50 MB zip, base64-encoded, plus the rest of the JSON.
	maxCodeRequestBytes = 69905067
	// maxConfigRequestBytes bounds UpdateFunctionConfiguration (its
	// environment alone may be 4 KB, policies and layers add more).
	maxConfigRequestBytes = 1 << 20
	// maxLogsRequestBytes is CloudWatch Logs' request limit.
	maxLogsRequestBytes = 1 << 20
)

// New builds the handler tree.
func New(cfg Config, fs Functions, iv Invoker, authority Identities, account Account, logsAPI, metrics http.Handler, log *slog.Logger) *Server {
	if cfg.BodyBudget == 0 {
		cfg.BodyBudget = DefaultBodyBudget
	}
	if cfg.MaxUnauthenticated == 0 {
		cfg.MaxUnauthenticated = DefaultMaxUnauthenticated
	}
	s := &Server{cfg: cfg, functions: fs, invoker: iv, auth: authority, account: account, logsAPI: logsAPI, log: log, mux: http.NewServeMux(),
		bodyBudget: &budget{limit: cfg.BodyBudget}, conns: newConnGuard(cfg.MaxUnauthenticated),
		urlConns: newConnGuard(cfg.MaxUnauthenticated), urlBodies: &budget{limit: cfg.BodyBudget}, urls: urlIndex{byID: map[string]string{}},
		console: console.New(console.Config{Region: cfg.Region, NoAuth: cfg.NoAuth}, authority)}
	op := func(action string) route { return route{action: action, limit: smallBody} }
	code := func(action string) route { return route{action: action, limit: maxCodeRequestBytes} }
	const fn = "/2015-03-31/functions"
	s.handle("POST "+fn, code("lambda:CreateFunction"), s.createFunction)
	s.handle("POST "+fn+"/{$}", code("lambda:CreateFunction"), s.createFunction)
	s.handle("GET "+fn, op("lambda:ListFunctions"), s.listFunctions)
	s.handle("GET "+fn+"/{$}", op("lambda:ListFunctions"), s.listFunctions)
	s.handle("GET "+fn+"/{name}", op("lambda:GetFunction"), s.getFunction)
	s.handle("DELETE "+fn+"/{name}", op("lambda:DeleteFunction"), s.deleteFunction)
	s.handle("GET "+fn+"/{name}/configuration", op("lambda:GetFunctionConfiguration"), s.getFunctionConfiguration)
	s.handle("PUT "+fn+"/{name}/configuration", route{action: "lambda:UpdateFunctionConfiguration", limit: maxConfigRequestBytes}, s.updateFunctionConfiguration)
	s.handle("PUT "+fn+"/{name}/code", code("lambda:UpdateFunctionCode"), s.updateFunctionCode)
	s.handle("POST "+fn+"/{name}/invocations", route{action: "lambda:InvokeFunction", limit: model.MaxSyncPayloadBytes}, s.invoke)
	s.handle("POST /2021-11-15/functions/{name}/response-streaming-invocations", route{action: "lambda:InvokeFunction", limit: model.MaxSyncPayloadBytes}, s.invokeWithResponseStream)
	s.handle("POST "+fn+"/{name}/policy", op("lambda:AddPermission"), s.addPermission)
	s.handle("GET "+fn+"/{name}/policy", op("lambda:GetPolicy"), s.getPolicy)
	s.handle("DELETE "+fn+"/{name}/policy/{sid}", op("lambda:RemovePermission"), s.removePermission)
	s.handle("PUT /2017-10-31/functions/{name}/concurrency", op("lambda:PutFunctionConcurrency"), s.putFunctionConcurrency)
	s.handle("DELETE /2017-10-31/functions/{name}/concurrency", op("lambda:DeleteFunctionConcurrency"), s.deleteFunctionConcurrency)
	s.handle("GET /2019-09-30/functions/{name}/concurrency", op("lambda:GetFunctionConcurrency"), s.getFunctionConcurrency)
	s.handle("GET /2016-08-19/account-settings", op("lambda:GetAccountSettings"), s.getAccountSettings)
	s.handle("GET /2016-08-19/account-settings/{$}", op("lambda:GetAccountSettings"), s.getAccountSettings)
	s.handle("POST "+tagsPath, op("lambda:TagResource"), s.tagResource)
	s.handle("DELETE "+tagsPath, op("lambda:UntagResource"), s.untagResource)
	s.handle("GET "+tagsPath, op("lambda:ListTags"), s.listTags)
	// Reads of features icebox does not have, answered as for a function
	// that has none of them configured (unconfigured.go).
	s.handle("GET /2020-06-30/functions/{name}/code-signing-config", op("lambda:GetFunctionCodeSigningConfig"), s.getFunctionCodeSigningConfig)
	s.handle("GET /2021-07-20/functions/{name}/runtime-management-config", op("lambda:GetRuntimeManagementConfig"), s.getRuntimeManagementConfig)
	s.handle("GET /2024-08-31/functions/{name}/recursion-config", op("lambda:GetFunctionRecursionConfig"), s.getFunctionRecursionConfig)
	s.handle("POST "+urlPath, op("lambda:CreateFunctionUrlConfig"), s.createFunctionURLConfig)
	s.handle("GET "+urlPath, op("lambda:GetFunctionUrlConfig"), s.getFunctionURLConfig)
	s.handle("PUT "+urlPath, op("lambda:UpdateFunctionUrlConfig"), s.updateFunctionURLConfig)
	s.handle("DELETE "+urlPath, op("lambda:DeleteFunctionUrlConfig"), s.deleteFunctionURLConfig)
	s.handle("GET "+urlPath+"s", op("lambda:ListFunctionUrlConfigs"), s.listFunctionURLConfigs)
	s.handle("GET "+fn+"/{name}/versions", op("lambda:ListVersionsByFunction"), s.listVersionsByFunction)
	s.handle("POST "+fn+"/{name}/versions", op("lambda:PublishVersion"), s.publishVersion)
	s.handle("GET "+fn+"/{name}/aliases", op("lambda:ListAliases"), s.listAliases)
	s.handle("POST "+fn+"/{name}/aliases", op("lambda:CreateAlias"), s.createAlias)
	s.handle("GET "+fn+"/{name}/aliases/{alias}", op("lambda:GetAlias"), s.getAlias)
	s.handle("PUT "+fn+"/{name}/aliases/{alias}", op("lambda:UpdateAlias"), s.updateAlias)
	s.handle("DELETE "+fn+"/{name}/aliases/{alias}", op("lambda:DeleteAlias"), s.deleteAlias)
	s.handle("GET /2015-03-31/event-source-mappings", op("lambda:ListEventSourceMappings"), s.listEventSourceMappings)
	s.handle("GET /2015-03-31/event-source-mappings/{$}", op("lambda:ListEventSourceMappings"), s.listEventSourceMappings)
	s.handle("GET /2019-09-30/functions/{name}/provisioned-concurrency", route{action: "lambda:ListProvisionedConcurrencyConfigs", limit: smallBody, actionFor: provisionedConcurrencyAction}, s.provisionedConcurrencyConfigs)
	s.handle("PUT /2019-09-30/functions/{name}/provisioned-concurrency", op("lambda:PutProvisionedConcurrencyConfig"), s.putProvisionedConcurrencyConfig)
	s.handle("DELETE /2019-09-30/functions/{name}/provisioned-concurrency", op("lambda:DeleteProvisionedConcurrencyConfig"), s.deleteProvisionedConcurrencyConfig)
	const eic = "/2019-09-25/functions/{name}/event-invoke-config"
	s.handle("PUT "+eic, op("lambda:PutFunctionEventInvokeConfig"), s.putEventInvokeConfig)
	s.handle("POST "+eic, op("lambda:UpdateFunctionEventInvokeConfig"), s.putEventInvokeConfig)
	s.handle("GET "+eic, op("lambda:GetFunctionEventInvokeConfig"), s.getEventInvokeConfig)
	s.handle("DELETE "+eic, op("lambda:DeleteFunctionEventInvokeConfig"), s.deleteEventInvokeConfig)
	s.handle("GET "+eic+"/list", op("lambda:ListFunctionEventInvokeConfigs"), s.listEventInvokeConfigs)
	s.handle("POST "+layerVersionsPath, code("lambda:PublishLayerVersion"), s.publishLayerVersion)
	s.handle("GET "+layerVersionsPath, op("lambda:ListLayerVersions"), s.listLayerVersions)
	s.handle("GET "+layerVersionPath, op("lambda:GetLayerVersion"), s.getLayerVersion)
	s.handle("DELETE "+layerVersionPath, op("lambda:DeleteLayerVersion"), s.deleteLayerVersion)
	s.handle("POST "+layerVersionPath+"/policy", op("lambda:AddLayerVersionPermission"), s.addLayerVersionPermission)
	s.handle("GET "+layerVersionPath+"/policy", op("lambda:GetLayerVersionPolicy"), s.getLayerVersionPolicy)
	s.handle("DELETE "+layerVersionPath+"/policy/{sid}", op("lambda:RemoveLayerVersionPermission"), s.removeLayerVersionPermission)
	s.handle("GET "+layersPath, route{action: "lambda:ListLayers", limit: smallBody, actionFor: layerAction}, s.layers)
	s.handle("GET "+layersPath+"/{$}", route{action: "lambda:ListLayers", limit: smallBody, actionFor: layerAction}, s.layers)
	s.handle("GET "+layerContentPath, op("lambda:GetLayerVersion"), s.layerContent)
	s.handle("GET /icebox/v1/functions/{name}/code", op("lambda:GetFunction"), s.downloadCode)
	s.handle("GET /icebox/v1/status", op("icebox:GetStatus"), s.status)
	s.handle("POST /icebox/v1/access-keys", op("icebox:CreateAccessKey"), s.createAccessKey)
	s.handle("GET /icebox/v1/access-keys", op("icebox:ListAccessKeys"), s.listAccessKeys)
	s.handle("DELETE /icebox/v1/access-keys/{id}", op("icebox:DeleteAccessKey"), s.deleteAccessKey)
	s.handle("PUT /icebox/v1/roles/{role}", op("icebox:PutRole"), s.putRole)
	s.handle("GET /icebox/v1/roles", op("icebox:ListRoles"), s.listRoles)
	s.handle("DELETE /icebox/v1/roles/{role}", op("icebox:DeleteRole"), s.deleteRole)
	s.handle("PUT /icebox/v1/networks/{name}", op("icebox:PutNetwork"), s.putNetwork)
	s.handle("GET /icebox/v1/networks", op("icebox:ListNetworks"), s.listNetworks)
	s.handle("DELETE /icebox/v1/networks/{name}", op("icebox:DeleteNetwork"), s.deleteNetwork)
	if metrics != nil {
		s.handle("GET /metrics", op("icebox:GetMetrics"), func(w http.ResponseWriter, r *http.Request) error {
			metrics.ServeHTTP(w, r)
			return nil
		})
	}
	// Probes, unauthenticated (health.go).
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	// The web console: its page, assets and session (console.go).
	s.mux.HandleFunc("/console/", s.serveConsole)
	s.mux.HandleFunc("POST /console/api/sign-in", s.consoleSignIn)
	// Everything else: CloudWatch Logs calls (POST / with their target),
	// or an unknown operation, answered once the caller is authenticated.
	s.mux.HandleFunc("/", s.other)
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Every AWS response carries a request id; Invoke replaces it with the
	// invocation's own.
	w.Header().Set("x-amzn-RequestId", model.NewUUID())
	closeAfterChunked(w, r)
	s.mux.ServeHTTP(w, r)
}

// closeAfterChunked ends a chunked request's connection with its answer.
// Go reads a chunked body even when a Content-Length came too (and then
// drops that header): a proxy in front that went by the length would see
// the rest as another request. With the connection closed, nothing after
// the body is ever read as one.
func closeAfterChunked(w http.ResponseWriter, r *http.Request) {
	if len(r.TransferEncoding) > 0 {
		w.Header().Set("Connection", "close")
	}
}

// other serves CloudWatch Logs calls, which all share one path, through
// the pipeline, and answers anything else as an unknown operation.
func (s *Server) other(w http.ResponseWriter, r *http.Request) {
	if target := r.Header.Get("X-Amz-Target"); s.logsAPI != nil && strings.HasPrefix(target, logs.TargetPrefix) {
		rt := route{action: "logs:" + strings.TrimPrefix(target, logs.TargetPrefix), limit: maxLogsRequestBytes}
		r, release, err := s.admit(w, r, rt)
		if err == nil {
			defer release()
			err = s.authorizeLogs(r)
		}
		if err != nil {
			logs.WriteError(w, r, s.log, err)
			return
		}
		s.logsAPI.ServeHTTP(w, r)
		return
	}
	r, release, err := s.admit(w, r, route{limit: smallBody})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	release()
	writeError(w, r, s.log, http.StatusNotFound, "UnknownOperationException", fmt.Sprintf("Unknown operation %s %s", r.Method, r.URL.Path))
}

// public says whether r is served without a signature: the metrics page
// (unless MetricsAuth, and never to a sandbox's code, which gets exactly
// its role's rights), and code and layer downloads carrying the token
// GetFunction or GetLayerVersion put in their URL (downloadCode and
// layerContent check it).
func (s *Server) public(r *http.Request) bool {
	if r.Method != http.MethodGet {
		return false
	}
	p := r.URL.Path
	_, fromSandbox := r.Context().Value(envKey{}).(*sandboxEnv)
	return (p == "/metrics" && !s.cfg.MetricsAuth && !fromSandbox) ||
		((strings.HasPrefix(p, "/icebox/v1/functions/") && strings.HasSuffix(p, "/code") ||
			strings.HasPrefix(p, "/icebox/v1/layers/") && strings.HasSuffix(p, "/content")) && r.URL.Query().Get("token") != "")
}

// Status is what `icebox status` shows.
type Status struct {
	Environments map[string]int     `json:"environments"`
	Concurrent   int                `json:"concurrentExecutions"`
	Unreserved   int                `json:"unreservedConcurrentExecutions"`
	QueueDepth   map[string]float64 `json:"asyncQueueDepth"`
	// Functions are the functions with a live environment or a queued
	// event, by name.
	Functions []FunctionStatus `json:"functions"`
	// Nodes are the cluster's live nodes (one when alone), by id.
	Nodes []membership.Node `json:"nodes,omitempty"`
}

// SetEnvironments tells the status page how to count environments by state.
func (s *Server) SetEnvironments(count func() map[string]int) { s.environments = count }

func (s *Server) status(w http.ResponseWriter, r *http.Request) error {
	u := s.account.Usage()
	st := Status{Concurrent: u.Concurrent, Unreserved: u.Unreserved, QueueDepth: s.invoker.QueueDepth(r.Context())}
	if s.environments != nil {
		st.Environments = s.environments()
	}
	st.Functions = s.functionStatuses(st.QueueDepth)
	if s.nodes != nil {
		// The rest of the page is this node's own; it stays useful when
		// the engine, which holds the node list, is not.
		nodes, err := s.nodes(r.Context())
		if err != nil {
			s.log.Warn("status: listing nodes", "err", err)
		}
		st.Nodes = nodes
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

// apiError maps an error class to Lambda's status and error code.
func classify(err error) (int, string) {
	var ae *errdefs.AuthError
	switch {
	case errors.Is(err, errNoProvisionedConcurrency):
		return http.StatusNotFound, "ProvisionedConcurrencyConfigNotFoundException"
	case errors.Is(err, errdefs.ErrNotFound):
		return http.StatusNotFound, "ResourceNotFoundException"
	case errors.Is(err, errdefs.ErrConflict):
		return http.StatusConflict, "ResourceConflictException"
	case errors.Is(err, errdefs.ErrInvalidContent):
		return http.StatusBadRequest, "InvalidRequestContentException"
	case errors.Is(err, errdefs.ErrInvalid), errors.Is(err, errdefs.ErrInvalidZip):
		return http.StatusBadRequest, "InvalidParameterValueException"
	case errors.Is(err, errdefs.ErrTooLarge):
		return http.StatusRequestEntityTooLarge, "RequestTooLargeException"
	case errors.Is(err, errdefs.ErrPreconditionFailed):
		return http.StatusPreconditionFailed, "PreconditionFailedException"
	case errors.Is(err, errdefs.ErrThrottled):
		return http.StatusTooManyRequests, "TooManyRequestsException"
	case errors.Is(err, errdefs.ErrUnavailable):
		return http.StatusServiceUnavailable, "ServiceException"
	case errors.As(err, &ae):
		return http.StatusForbidden, ae.Code()
	}
	return http.StatusInternalServerError, "ServiceException"
}

var classes = []error{errdefs.ErrNotFound, errdefs.ErrConflict, errdefs.ErrInvalidContent, errdefs.ErrInvalid,
	errdefs.ErrInvalidZip, errdefs.ErrTooLarge, errdefs.ErrPreconditionFailed, errdefs.ErrThrottled, errdefs.ErrUnavailable}

// message strips the trailing ": <class>" that wrapping with %w leaves.
func message(err error) string {
	msg := err.Error()
	for _, c := range classes {
		msg = strings.TrimSuffix(msg, ": "+c.Error())
	}
	return msg
}

// fail writes err as an AWS error response. Platform faults are logged here,
// once; their details stay out of the response.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, code := classify(err)
	msg := message(err)
	var te *errdefs.ThrottleError
	if errors.As(err, &te) {
		w.Header().Set("Retry-After", strconv.Itoa(max(te.RetryAfterSeconds, 1)))
		writeErrorBody(w, status, code, te.Message, map[string]string{"Reason": te.Reason})
		return
	}
	if status >= 500 {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		if status == http.StatusInternalServerError {
			msg = "An internal error occurred in icebox; see the server log."
		}
	}
	writeError(w, r, s.log, status, code, msg)
}

func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, status int, code, msg string) {
	writeErrorBody(w, status, code, msg, nil)
}

// writeErrorBody writes an AWS error with extra body fields (Reason…).
func writeErrorBody(w http.ResponseWriter, status int, code, msg string, extra map[string]string) {
	typ := "User"
	if status >= 500 {
		typ = "Service"
	}
	body := map[string]string{"Type": typ, "message": msg}
	for k, v := range extra {
		body[k] = v
	}
	if code == "ResourceNotFoundException" {
		// Lambda spells this one with a capital M; SDKs read either.
		delete(body, "message")
		body["Message"] = msg
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("x-amzn-ErrorType", code)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// readJSON decodes the request body (read by the pipeline, within the
// operation's limit) into v.
func readJSON(r *http.Request, v any) error {
	body := bodyOf(r)
	if len(body) == 0 {
		body = []byte("{}")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("Could not parse request body into json: %s: %w", err.Error(), errdefs.ErrInvalidContent)
	}
	return nil
}
