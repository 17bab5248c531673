package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"

	"icebox/internal/auth"
	"icebox/internal/errdefs"
	"icebox/internal/invoke"
	"icebox/internal/model"
)

// Every request passes one pipeline (handle): route, check the signature's
// claims from the headers (or, for an unsigned call carrying the console's
// cookie, the console session), read the body once (bounded by the
// operation's limit and the daemon's budgets), verify the signature over
// it, authorize the caller once on the resource, run the handler. /metrics
// (unless MetricsAuth, and never for a sandbox) and presigned code
// downloads are served without a signature.

type callerKey struct{}

// caller is what the pipeline leaves in a request's context: who signed it
// (signed is false when authentication is off or the path is public), and
// the body, read once.
type caller struct {
	id     auth.Identity
	signed bool
	body   []byte
	target target
}

// target is the function a request's path names, resolved once for
// authorization and the handler.
type target struct {
	name string // the parsed name; "" when the path names none or badly
	fn   model.Function
	err  error // why fn is not there: not found, a bad name or qualifier
}

// callerOf returns the request's authenticated caller; ok is false when
// the request was not authenticated (NoAuth, or a public path).
func callerOf(r *http.Request) (caller, bool) {
	c, _ := r.Context().Value(callerKey{}).(caller)
	return c, c.signed
}

// bodyOf is the request body the pipeline read.
func bodyOf(r *http.Request) []byte {
	c, _ := r.Context().Value(callerKey{}).(caller)
	return c.body
}

// A route is one operation: its IAM action and the largest body it takes.
type route struct {
	action string
	limit  int64
	// actionFor, when set, picks the action from the request, for
	// operations Lambda tells apart by a query parameter on one path.
	actionFor func(*http.Request) string
}

// operation is the API operation's name in messages ("CreateFunction").
func (rt route) operation() string {
	_, op, _ := strings.Cut(rt.action, ":")
	return op
}

// tooLarge is Lambda's answer to a body over the route's limit.
func (rt route) tooLarge(r *http.Request) func(size int64) error {
	return func(size int64) error {
		if rt.action == "lambda:InvokeFunction" {
			typ := r.Header.Get("X-Amz-Invocation-Type")
			if typ == "" {
				typ = string(invoke.RequestResponse)
			}
			return fmt.Errorf("%d byte payload is too large for the %s invocation type (limit %d bytes): %w", size, typ, rt.limit, errdefs.ErrTooLarge)
		}
		return fmt.Errorf("Request must be smaller than %d bytes for the %s operation: %w", rt.limit, rt.operation(), errdefs.ErrTooLarge)
	}
}

// A handler serves one operation; an error it returns is the response.
type handler func(w http.ResponseWriter, r *http.Request) error

// handle registers h for pattern behind the pipeline.
func (s *Server) handle(pattern string, rt route, h handler) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		r, release, err := s.admit(w, r, rt)
		if err == nil {
			defer release()
			action := rt.action
			if rt.actionFor != nil {
				action = rt.actionFor(r)
			}
			if err = s.authorize(r, action); err == nil {
				err = h(w, r)
			}
		}
		if err != nil {
			s.fail(w, r, err)
		}
	})
}

// admit authenticates r and reads its body: it returns r carrying the
// caller, and a release for the body's budget once the handler is done.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, rt route) (_ *http.Request, release func(), err error) {
	var claim *auth.Claim
	var session *auth.Identity
	if !s.cfg.NoAuth && !s.public(r) {
		// A console call carries its session cookie instead of a signature.
		id, ok, err := s.console.Authenticate(r)
		switch {
		case err != nil:
			return r, nil, err
		case ok:
			session = &id
		default:
			if claim, err = s.auth.Check(r); err != nil {
				return r, nil, err
			}
		}
	}
	body, err := s.readBody(w, r, rt.limit, rt.tooLarge(r))
	if err != nil {
		return r, nil, err
	}
	c := caller{body: body.data}
	if claim != nil {
		sum := sha256.Sum256(body.data)
		if c.id, err = claim.Verify(r, hex.EncodeToString(sum[:])); err != nil {
			body.release()
			return r, nil, err
		}
		c.signed = true
	}
	if session != nil {
		c.id, c.signed = *session, true
	}
	if c.signed {
		s.conns.authenticated(r.Context())
	}
	if ref := r.PathValue("name"); ref != "" {
		t := &c.target
		t.name, t.fn, t.err = s.invoker.Resolve(ref, r.URL.Query().Get("Qualifier"))
	}
	r.Body = io.NopCloser(bytes.NewReader(body.data))
	return r.WithContext(context.WithValue(r.Context(), callerKey{}, c)), body.release, nil
}
