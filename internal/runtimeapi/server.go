// Package runtimeapi serves Lambda's Runtime API (2018-06-01) to the runtime
// of one execution environment: the runtime long-polls
// /runtime/invocation/next, and answers with /response or /error.
//
// The server also owns freezing: the environment is frozen the moment its
// runtime waits for an event and none is queued, and thawed right before an
// event is handed over. Both decisions are taken under one lock, so an event
// can never be handed to a frozen environment or be followed by a freeze.
package runtimeapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"

	"icebox/internal/model"
)

// Freezer stops and resumes every process of an environment.
type Freezer interface {
	Freeze() error
	Thaw() error
}

// Response is what the runtime answered for one invocation.
type Response struct {
	Payload []byte
	// ErrorType is set when the runtime posted to /error (or the response was
	// too large); Payload then holds Lambda's error body.
	ErrorType string
}

// ErrNotTaken means Invoke gave up before the runtime had taken the event:
// the function never saw it, so it may safely run elsewhere.
var ErrNotTaken = errors.New("the runtime never took the event")

// ErrResponseTooLarge is the error type Lambda reports for an oversized response.
const ErrResponseTooLarge = "Function.ResponseSizeTooLarge"

type call struct {
	inv    *model.Invocation
	result chan Response
}

// Server is the Runtime API of one environment.
type Server struct {
	freezer Freezer
	http    *http.Server

	initOnce sync.Once
	initDone chan struct{} // closed at the runtime's first /next
	initErr  chan []byte   // receives the body of /runtime/init/error
	done     chan struct{} // closed by Close: fails the call in progress

	mu      sync.Mutex
	pending *call      // handed over, runtime not yet in /next
	current *call      // runtime is working on it
	waiter  chan *call // runtime is blocked in /next
	frozen  bool
	closed  bool
}

// New makes a server for one environment. freezer may be nil (no freezing).
func New(freezer Freezer) *Server {
	s := &Server{freezer: freezer, initDone: make(chan struct{}), initErr: make(chan []byte, 1), done: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", s.next)
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", s.response)
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", s.error)
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", s.initError)
	s.http = &http.Server{Handler: mux}
	return s
}

// Serve answers the runtime on l until Close.
func (s *Server) Serve(l net.Listener) error {
	err := s.http.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops the server and fails the call in progress, if any.
func (s *Server) Close() error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.done)
	}
	s.mu.Unlock()
	return s.http.Close()
}

// InitDone is closed when the runtime first asks for an event: init is over.
func (s *Server) InitDone() <-chan struct{} { return s.initDone }

// InitError yields the body the runtime posted to /runtime/init/error.
func (s *Server) InitError() <-chan []byte { return s.initErr }

// Invoke hands inv to the runtime and waits for its answer. A context error
// means the caller gave up (timeout): the environment is then unusable and
// must be destroyed by the caller.
func (s *Server) Invoke(ctx context.Context, inv *model.Invocation) (Response, error) {
	c := &call{inv: inv, result: make(chan Response, 1)}
	if err := s.deliver(c); err != nil {
		return Response{}, err
	}
	select {
	case r := <-c.result:
		return r, nil
	case <-ctx.Done():
		s.mu.Lock()
		untaken := s.pending == c
		if untaken {
			s.pending = nil
		}
		s.mu.Unlock()
		if untaken {
			return Response{}, fmt.Errorf("%w: %w", ErrNotTaken, ctx.Err())
		}
		return Response{}, ctx.Err()
	case <-s.done:
		// An answer that raced with Close still counts.
		select {
		case r := <-c.result:
			return r, nil
		default:
		}
		return Response{}, errors.New("runtime api closed")
	}
}

func (s *Server) deliver(c *call) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("runtime api closed")
	}
	if s.pending != nil || s.current != nil {
		return errors.New("environment is busy")
	}
	if s.frozen {
		if err := s.freezer.Thaw(); err != nil {
			return fmt.Errorf("thaw: %w", err)
		}
		s.frozen = false
	}
	if s.waiter != nil {
		s.waiter <- c
		s.waiter = nil
		s.current = c
		return nil
	}
	s.pending = c
	return nil
}

func (s *Server) next(w http.ResponseWriter, r *http.Request) {
	// The first /next ends init. The environment is not frozen then: the
	// sandbox's own start-up (its PID 1 reporting the runtime started) may
	// still be under way, and a cold start's event follows at once anyway.
	first := false
	s.initOnce.Do(func() { close(s.initDone); first = true })
	s.mu.Lock()
	if s.current != nil {
		// The runtime moved on without answering: Lambda fails that call.
		s.current.result <- Response{ErrorType: "Runtime.InvalidResponse", Payload: ErrorBody("Runtime.InvalidResponse", "runtime asked for the next event before answering the current one")}
		s.current = nil
	}
	c := s.pending
	if c != nil {
		s.pending, s.current = nil, c
		s.mu.Unlock()
		writeEvent(w, c.inv)
		return
	}
	ch := make(chan *call, 1)
	s.waiter = ch
	if s.freezer != nil && !s.frozen && !first {
		// Freezing is best effort: an environment that cannot be frozen keeps running.
		if err := s.freezer.Freeze(); err == nil {
			s.frozen = true
		}
	}
	s.mu.Unlock()
	select {
	case c := <-ch:
		writeEvent(w, c.inv)
	case <-r.Context().Done():
		s.mu.Lock()
		if s.waiter == ch {
			s.waiter = nil
		}
		s.mu.Unlock()
	}
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

// take removes the current call if it has the given id.
func (s *Server) take(id string) *call {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.current == nil || s.current.inv.RequestID != id {
		return nil
	}
	c := s.current
	s.current = nil
	return c
}

// readLimited reads a request body of at most limit bytes; ok is false when
// it was longer. A body whose Content-Length is within the limit is read
// into one buffer of that size (net/http guarantees the length), instead of
// growing one from 512 bytes.
func readLimited(r *http.Request, limit int64) ([]byte, bool, error) {
	if n := r.ContentLength; n >= 0 && n <= limit {
		b := make([]byte, n)
		if _, err := io.ReadFull(r.Body, b); err != nil {
			return nil, false, err
		}
		return b, true, nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, false, err
	}
	return b, int64(len(b)) <= limit, nil
}

func (s *Server) response(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	c := s.take(id)
	if c == nil {
		apiError(w, http.StatusBadRequest, "InvalidRequestID", "Invalid request ID")
		return
	}
	body, ok, err := readLimited(r, model.MaxSyncPayloadBytes)
	switch {
	case err != nil:
		c.result <- Response{ErrorType: "Runtime.InvalidResponse", Payload: ErrorBody("Runtime.InvalidResponse", "reading response: "+err.Error())}
		apiError(w, http.StatusBadRequest, "InvalidResponse", err.Error())
	case !ok:
		c.result <- Response{ErrorType: ErrResponseTooLarge, Payload: ErrorBody(ErrResponseTooLarge,
			fmt.Sprintf("Response payload size exceeded maximum allowed payload size (%d bytes).", model.MaxResponseBytes))}
		apiError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "response payload too large")
	default:
		c.result <- Response{Payload: body}
		accepted(w)
	}
}

func (s *Server) error(w http.ResponseWriter, r *http.Request) {
	c := s.take(r.PathValue("id"))
	if c == nil {
		apiError(w, http.StatusBadRequest, "InvalidRequestID", "Invalid request ID")
		return
	}
	body, _, _ := readLimited(r, model.MaxSyncPayloadBytes)
	typ := r.Header.Get("Lambda-Runtime-Function-Error-Type")
	if !json.Valid(body) || len(body) == 0 {
		if typ == "" {
			typ = "Runtime.Unknown"
		}
		body = ErrorBody(typ, string(body))
	} else if typ == "" {
		var e struct{ ErrorType string }
		_ = json.Unmarshal(body, &e)
		typ = e.ErrorType
	}
	if typ == "" {
		typ = "Runtime.Unknown"
	}
	c.result <- Response{ErrorType: typ, Payload: body}
	accepted(w)
}

func (s *Server) initError(w http.ResponseWriter, r *http.Request) {
	body, _, _ := readLimited(r, model.MaxSyncPayloadBytes)
	if !json.Valid(body) || len(body) == 0 {
		typ := r.Header.Get("Lambda-Runtime-Function-Error-Type")
		if typ == "" {
			typ = "Runtime.InitError"
		}
		body = ErrorBody(typ, string(body))
	}
	select {
	case s.initErr <- body:
	default:
	}
	accepted(w)
}

// ErrorBody renders Lambda's {"errorMessage","errorType"} function error body.
func ErrorBody(typ, msg string) []byte {
	b, _ := json.Marshal(struct {
		ErrorMessage string `json:"errorMessage"`
		ErrorType    string `json:"errorType"`
	}{msg, typ})
	return b
}

func accepted(w http.ResponseWriter) {
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, `{"status":"OK"}`)
}

func apiError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.Marshal(struct {
		ErrorMessage string `json:"errorMessage"`
		ErrorType    string `json:"errorType"`
	}{msg, typ})
	_, _ = w.Write(b)
}
