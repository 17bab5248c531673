package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"

	"icebox/internal/auth"
	"icebox/internal/errdefs"
	"icebox/internal/httpbody"
	"icebox/internal/invoke"
	"icebox/internal/model"
	"icebox/internal/policy"
)

// The function URL listener. A URL is http://<url-id>.lambda-url.<region>.localhost:<port>/
// (every *.localhost name resolves to loopback); the Host header picks the
// URL, so one listener serves them all. A call is authenticated (AWS_IAM:
// SigV4 for service lambda; NONE: anonymous) and authorized
// (lambda:InvokeFunctionUrl) by the same code as the API, then runs through
// the same invoke path as Invoke: admission, throttling, metrics and logs
// are Invoke's. The event is payload format 2.0 (urlevent.go).

// urlIndex maps URL ids to the function that has them. It follows the
// catalog (FunctionChanged); a lookup checks the function still has the
// URL, so an entry that is late to go never serves a deleted URL.
type urlIndex struct {
	mu   sync.RWMutex
	byID map[string]string // url id → function name
}

// FunctionChanged keeps the URL index in step with a change to a function
// (old nil: created; fn nil: deleted), as the catalog reports it.
func (s *Server) FunctionChanged(old, fn *model.Function) {
	s.urls.mu.Lock()
	defer s.urls.mu.Unlock()
	if old != nil {
		for _, u := range old.URLs {
			delete(s.urls.byID, u.ID)
		}
	}
	if fn != nil {
		for _, u := range fn.URLs {
			s.urls.byID[u.ID] = fn.Name
		}
	}
}

// indexURL records a URL this node just made: the catalog reports it a
// little later, and the URL works as soon as it is returned.
func (s *Server) indexURL(id, name string) {
	s.urls.mu.Lock()
	s.urls.byID[id] = name
	s.urls.mu.Unlock()
}

// findURL returns the function and URL a URL id names.
func (s *Server) findURL(id string) (model.Function, model.FunctionURL, bool) {
	s.urls.mu.RLock()
	name, ok := s.urls.byID[id]
	s.urls.mu.RUnlock()
	if !ok {
		return model.Function{}, model.FunctionURL{}, false
	}
	fn, err := s.functions.Get(name)
	if err != nil {
		return model.Function{}, model.FunctionURL{}, false
	}
	for _, u := range fn.URLs {
		if u.ID == id {
			return fn, u, true
		}
	}
	return model.Function{}, model.FunctionURL{}, false
}

// urlID is the URL id a Host header names, or "" when it names none.
func (s *Server) urlID(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	id, ok := strings.CutSuffix(strings.ToLower(host), "."+s.urlDomain())
	if !ok || !model.ValidURLID(id) {
		return ""
	}
	return id
}

// URLHTTPServer returns the server for the function URL listener: the
// API's header and read limits, a body budget of its own, and a cap on
// connections that have not yet made a call (anonymous callers count as
// having made one once their first call is admitted).
func (s *Server) URLHTTPServer() *http.Server {
	return &http.Server{
		Handler:           http.HandlerFunc(s.serveURL),
		ReadHeaderTimeout: httpbody.ReadHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    httpbody.MaxHeaderBytes,
		ConnState:         s.urlConns.connState,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(withConn(ctx, c), budgetKey{}, s.urlBodies)
		},
	}
}

// URL errors are Lambda's: a JSON {"Message": ...} with x-amzn-ErrorType.
var (
	errURLNotFound  = &urlError{http.StatusNotFound, "ResourceNotFoundException", "Not Found"}
	errURLForbidden = &urlError{http.StatusForbidden, "AccessDeniedException", "Forbidden"}
	errURLThrottled = &urlError{http.StatusTooManyRequests, "TooManyRequestsException", "Rate Exceeded."}
	errURLFunction  = &urlError{http.StatusBadGateway, "", "Internal Server Error"}
	errURLInternal  = &urlError{http.StatusInternalServerError, "ServiceException", "Internal Server Error"}
)

type urlError struct {
	status int
	code   string
	msg    string
}

func (e *urlError) Error() string { return e.msg }

func (e *urlError) write(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if e.code != "" {
		h.Set("x-amzn-ErrorType", e.code)
	}
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(map[string]string{"Message": e.msg})
}

// urlFailure is what a URL caller is told for err, an error of the API's
// classes or a urlError.
func (s *Server) urlFailure(r *http.Request, err error) *urlError {
	var ue *urlError
	var ae *errdefs.AuthError
	switch {
	case errors.As(err, &ue):
		return ue
	case errors.As(err, &ae):
		if ae.Kind == errdefs.AuthDenied || ae.Kind == errdefs.AuthMissing {
			return errURLForbidden
		}
		return &urlError{http.StatusForbidden, ae.Code(), ae.Message}
	case errors.Is(err, errdefs.ErrThrottled):
		return errURLThrottled
	case errors.Is(err, errdefs.ErrTooLarge):
		return &urlError{http.StatusRequestEntityTooLarge, "RequestTooLargeException", message(err)}
	case errors.Is(err, errdefs.ErrInvalidContent):
		return &urlError{http.StatusBadRequest, "InvalidRequestContentException", message(err)}
	case errors.Is(err, errdefs.ErrUnavailable):
		return &urlError{http.StatusServiceUnavailable, "ServiceException", message(err)}
	case errors.Is(err, errdefs.ErrNotFound):
		// The URL's alias went away: the URL answers as an unknown one.
		return errURLNotFound
	}
	s.log.Error("function URL call failed", "host", r.Host, "err", err)
	return errURLInternal
}

func (s *Server) serveURL(w http.ResponseWriter, r *http.Request) {
	requestID := model.NewUUID()
	w.Header().Set("x-amzn-RequestId", requestID)
	// The event's x-amzn-trace-id is the trace the function runs under:
	// the caller's when it sent a valid one.
	trace := invoke.TraceID(r.Header.Get("X-Amzn-Trace-Id"))
	closeAfterChunked(w, r)
	if err := s.callURL(w, r, requestID, trace); err != nil {
		s.urlFailure(r, err).write(w)
	}
}

// callURL serves one call to a function URL; an error it returns is
// written as Lambda's URL error, before anything else was.
func (s *Server) callURL(w http.ResponseWriter, r *http.Request, requestID, trace string) error {
	fn, u, ok := s.findURL(s.urlID(r.Host))
	if !ok {
		return errURLNotFound
	}
	if corsPreflight(w, r, u.Cors) {
		return nil
	}
	run, event, release, err := s.admitURL(w, r, fn, u, requestID, trace)
	if err != nil {
		return err
	}
	defer release()
	req := invoke.Request{FunctionName: fn.Name, Qualifier: u.Qualifier, Function: &run, Payload: event, RequestID: requestID, TraceHeader: trace}
	if u.InvokeMode == model.InvokeStream {
		return s.streamURL(w, r, u, req)
	}
	res, err := s.invoker.Invoke(r.Context(), req)
	if err != nil {
		return err
	}
	if res.FunctionError != "" {
		return errURLFunction
	}
	resp, err := parseURLResponse(res.Payload)
	if err != nil {
		return errURLFunction
	}
	writeURLHead(w, r, u.Cors, resp.head)
	_, _ = w.Write(resp.body)
	return nil
}

// admitURL authenticates and authorizes a call to u (a URL of fn) and
// reads its body: it returns the function to run (the view of u's
// qualifier), the event, and a release for the body's budget. An
// anonymous caller is refused before its body is read; a signed one once
// the signature's claims fail, or its signature over the body does.
func (s *Server) admitURL(w http.ResponseWriter, r *http.Request, fn model.Function, u model.FunctionURL, requestID, trace string) (run model.Function, event []byte, release func(), err error) {
	// The alias's view carries the alias's own resource policy.
	run = fn
	if u.Qualifier != "" {
		if _, run, err = s.invoker.Resolve(fn.Name, u.Qualifier); err != nil {
			return run, nil, nil, err
		}
	}
	var claim *auth.Claim
	if u.AuthType == model.URLAuthIAM && !s.cfg.NoAuth {
		if claim, err = s.auth.Check(r); err != nil {
			return run, nil, nil, err
		}
		if svc := claim.Service(); svc != "lambda" {
			return run, nil, nil, &errdefs.AuthError{Kind: errdefs.AuthBadSignature, Message: fmt.Sprintf("Credential should be scoped to correct service: 'lambda', not '%s'.", svc)}
		}
	} else if err = s.authorizeURL(run, u, nil); err != nil {
		return run, nil, nil, err
	}
	body, err := s.readBody(w, r, model.MaxSyncPayloadBytes, func(size int64) error {
		return fmt.Errorf("Request must be smaller than %d bytes for the InvokeFunction operation: %w", model.MaxSyncPayloadBytes, errdefs.ErrTooLarge)
	})
	if err != nil {
		return run, nil, nil, err
	}
	defer func() {
		if err != nil {
			body.release()
		}
	}()
	var authorizer *urlAuthorizer
	if claim != nil {
		sum := sha256.Sum256(body.data)
		id, err := claim.Verify(r, hex.EncodeToString(sum[:]))
		if err != nil {
			return run, nil, nil, err
		}
		if err = s.authorizeURL(run, u, &id); err != nil {
			return run, nil, nil, err
		}
		authorizer = s.iamAuthorizer(id, claim.AccessKeyID())
	}
	s.urlConns.authenticated(r.Context())
	if event, err = s.urlEvent(r, body.data, u.ID, requestID, trace, authorizer); err != nil {
		return run, nil, nil, err
	}
	return run, event, body.release, nil
}

// authorizeURL decides lambda:InvokeFunctionUrl on fn (the view of u's
// qualifier) for a call to u: for AWS_IAM, as the signed caller id; for
// NONE (id nil), as an anonymous caller, whom only the function's resource
// policy can allow. Either way the request carries the condition key
// lambda:FunctionUrlAuthType, which AddPermission's FunctionUrlAuthType
// sets.
func (s *Server) authorizeURL(fn model.Function, u model.FunctionURL, id *auth.Identity) error {
	if s.cfg.NoAuth || (id != nil && id.Root) {
		return nil
	}
	req := policy.Request{Action: "lambda:InvokeFunctionUrl", Resource: fn.QualifiedARN(s.cfg.Region, s.cfg.AccountID),
		Context: map[string]string{"lambda:functionurlauthtype": u.AuthType}}
	if id != nil {
		req.Principal, req.Account = id.ARN, s.cfg.AccountID
		return decideRequest(*id, req, fn.Policy)
	}
	if policy.Evaluate(req, nil, fn.Policy) != policy.Allowed {
		return errURLForbidden
	}
	return nil
}
