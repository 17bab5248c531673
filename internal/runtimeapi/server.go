// Package runtimeapi serves Lambda's Runtime API (2018-06-01) to the runtime
// of one execution environment: the runtime long-polls
// /runtime/invocation/next, and answers with /response or /error. The same
// address serves the Extensions API (2020-01-01) to the environment's
// extensions.
//
// The server only speaks HTTP: it parses each request, bounds what it
// reads, and leaves every decision (hand-over, freezing, which request id
// may answer, what a call's outcome is) to the Environment it serves.
package runtimeapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/net/netutil"

	"icebox/internal/httpbody"
	"icebox/internal/model"
)

// Environment is the execution environment a server is the Runtime API of
// (environment.Env in icebox).
type Environment interface {
	// Next waits for the next event, until ctx ends.
	Next(ctx context.Context) (*model.Invocation, error)
	// Sent follows every event Next returned, once it is written to the
	// runtime's connection (or failed to be): a sandbox frozen while its
	// runtime waited in /next is thawed only then.
	Sent()
	// Holds reports whether the runtime holds the event with this request
	// id, so that it may answer it.
	Holds(requestID string) bool
	// Respond and Fail answer the event with this request id; false if the
	// runtime does not hold it (any more). body is Lambda's error body.
	Respond(requestID string, payload []byte) bool
	// Stream is where the call with this request id takes a streamed
	// response; nil if its caller takes it buffered (or the runtime does
	// not hold it).
	Stream(requestID string) model.ResponseStream
	Fail(requestID, errorType string, body []byte) bool
	// InitError reports the runtime's failed init.
	InitError(body []byte)
	Extensions
}

// Config configures a server. The zero value is Lambda's limits.
type Config struct {
	// MaxStreamBytes bounds a streamed response. Default
	// model.MaxStreamedResponseBytes.
	MaxStreamBytes int64
	// StreamUncappedBytes of a streamed response go out at full speed,
	// the rest at StreamBytesPerSecond. Defaults
	// model.StreamUncappedBytes and model.StreamBytesPerSecond.
	StreamUncappedBytes  int64
	StreamBytesPerSecond int64
}

func (c *Config) setDefaults() {
	if c.MaxStreamBytes == 0 {
		c.MaxStreamBytes = model.MaxStreamedResponseBytes
	}
	if c.StreamUncappedBytes == 0 {
		c.StreamUncappedBytes = model.StreamUncappedBytes
	}
	if c.StreamBytesPerSecond == 0 {
		c.StreamBytesPerSecond = model.StreamBytesPerSecond
	}
}

// Server is the Runtime API of one environment.
type Server struct {
	cfg       Config
	env       Environment
	http      *http.Server
	telemetry Telemetry // nil: the Telemetry API answers "not supported"

	mu sync.Mutex
	// streaming is set while a response is being streamed: a second one
	// at the same time is refused, so the limits hold per call.
	streaming bool
}

// New makes a server for one environment.
func New(env Environment, cfg Config) *Server {
	cfg.setDefaults()
	s := &Server{cfg: cfg, env: env}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", s.next)
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", s.response)
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", s.error)
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", s.initError)
	s.routeExtensions(mux)
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: httpbody.ReadHeaderTimeout, MaxHeaderBytes: httpbody.MaxHeaderBytes}
	return s
}

// maxConns bounds a function's connections to its Runtime API: runtimes
// use one or two, each extension (at most 10) one or two for its event/next
// and its reports; headers and bodies are bounded by httpbody.
const maxConns = 8 + 2*model.MaxExtensions

// Serve answers the runtime on l until Close.
func (s *Server) Serve(l net.Listener) error {
	err := s.http.Serve(netutil.LimitListener(l, maxConns))
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops the server and closes its connections.
func (s *Server) Close() error { return s.http.Close() }

func (s *Server) next(w http.ResponseWriter, r *http.Request) {
	inv, err := s.env.Next(r.Context())
	if err != nil {
		if r.Context().Err() == nil {
			apiError(w, http.StatusForbidden, "InvalidStateTransition", err.Error())
		}
		return
	}
	writeEvent(w, inv)
	// On the connection before the thaw, the event is there when the
	// runtime's thread waiting for it comes out of the freezer: it reads
	// it at once rather than going back to sleep and being woken again.
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	s.env.Sent()
}

// jsonContentType is shared by every response: net/http copies header
// values when it writes them and nothing here modifies them.
var jsonContentType = []string{"application/json"}

func writeEvent(w http.ResponseWriter, inv *model.Invocation) {
	// One backing array for the per-event values instead of one slice each:
	// this runs once per invocation.
	v := make([]string, 6)
	v[0] = inv.RequestID
	v[1] = strconv.FormatInt(inv.Deadline.UnixMilli(), 10)
	v[2] = inv.FunctionARN
	v[3] = inv.TraceID
	v[4] = strconv.Itoa(len(inv.Payload))
	v[5] = inv.ClientContext
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["Lambda-Runtime-Aws-Request-Id"] = v[0:1:1]
	h["Lambda-Runtime-Deadline-Ms"] = v[1:2:2]
	h["Lambda-Runtime-Invoked-Function-Arn"] = v[2:3:3]
	h["Lambda-Runtime-Trace-Id"] = v[3:4:4]
	h["Content-Length"] = v[4:5:5]
	if inv.ClientContext != "" {
		h["Lambda-Runtime-Client-Context"] = v[5:6:6]
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(inv.Payload)
}

// readLimited reads a request body of at most limit bytes (httpbody.Read);
// ok is false when it was longer.
func readLimited(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, bool, error) {
	b, err := httpbody.Read(w, r, limit, nil)
	if _, over := errors.AsType[*httpbody.TooLargeError](err); over {
		return nil, false, nil
	}
	return b, err == nil, err
}

func (s *Server) response(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !s.env.Holds(id) {
		invalidRequestID(w)
		return
	}
	// A response is streamed when the runtime says so, and whenever the
	// caller streams: the call's invoke mode decides, as on Lambda.
	// (aws-lambda-go streams without the header: every response of its
	// goes chunked, with its errors in the trailers.)
	if strings.EqualFold(r.Header.Get(responseModeHeader), "streaming") || s.env.Stream(id) != nil {
		s.streamResponse(w, r, id)
		return
	}
	body, ok, err := readLimited(w, r, model.MaxSyncPayloadBytes)
	switch {
	case err != nil:
		s.env.Fail(id, model.ErrorTypeInvalidResponse, model.ErrorBody(model.ErrorTypeInvalidResponse, "reading response: "+err.Error()))
		apiError(w, http.StatusBadRequest, "InvalidResponse", err.Error())
	case !ok:
		s.env.Fail(id, model.ErrorTypeResponseTooLarge, model.ResponseTooLargeBody())
		apiError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "response payload too large")
	case r.Trailer.Get(errorTypeTrailer) != "":
		// An error a chunked response reported at its end.
		typ := r.Trailer.Get(errorTypeTrailer)
		if !s.env.Fail(id, typ, streamErrorBody(typ, r.Trailer.Get(errorBodyTrailer))) {
			invalidRequestID(w)
			return
		}
		accepted(w)
	case s.env.Respond(id, body):
		accepted(w)
	default:
		invalidRequestID(w)
	}
}

func (s *Server) error(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !s.env.Holds(id) {
		invalidRequestID(w)
		return
	}
	typ, body := errorReport(w, r, model.ErrorTypeUnknown)
	if !s.env.Fail(id, typ, body) {
		invalidRequestID(w)
		return
	}
	accepted(w)
}

func (s *Server) initError(w http.ResponseWriter, r *http.Request) {
	_, body := errorReport(w, r, model.ErrorTypeInitError)
	s.env.InitError(body)
	accepted(w)
}

// errorReport reads the error a runtime posted: its type (the
// Lambda-Runtime-Function-Error-Type header, else the body's errorType,
// else fallback) and Lambda's error body (the body itself when it is JSON,
// else wrapped in one).
func errorReport(w http.ResponseWriter, r *http.Request, fallback string) (typ string, body []byte) {
	body, _, _ = readLimited(w, r, model.MaxSyncPayloadBytes)
	typ = r.Header.Get("Lambda-Runtime-Function-Error-Type")
	if len(body) == 0 || !json.Valid(body) {
		if typ == "" {
			typ = fallback
		}
		return typ, model.ErrorBody(typ, string(body))
	}
	if typ == "" {
		var e struct{ ErrorType string }
		_ = json.Unmarshal(body, &e)
		typ = e.ErrorType
	}
	if typ == "" {
		typ = fallback
	}
	return typ, body
}

func accepted(w http.ResponseWriter) {
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, `{"status":"OK"}`)
}

func invalidRequestID(w http.ResponseWriter) {
	apiError(w, http.StatusBadRequest, "InvalidRequestID", "Invalid request ID")
}

// apiError answers with the Runtime API's own error, in Lambda's error body
// shape.
func apiError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(status)
	_, _ = w.Write(model.ErrorBody(typ, msg))
}
