package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"icebox/internal/errdefs"
)

// TestErrorMapping: every error class reaches the client as Lambda's
// status, error code and message, wrapped however deep.
func TestErrorMapping(t *testing.T) {
	s := &Server{log: slog.New(slog.DiscardHandler)}
	for _, tc := range []struct {
		err    error
		status int
		code   string
		msg    string
	}{
		{errdefs.ErrNotFound, 404, "ResourceNotFoundException", ""},
		{fmt.Errorf("Function not found: arn:x: %w", errdefs.ErrNotFound), 404, "ResourceNotFoundException", "Function not found: arn:x"},
		{fmt.Errorf("exists: %w", errdefs.ErrConflict), 409, "ResourceConflictException", "exists"},
		{fmt.Errorf("bad json: %w", errdefs.ErrInvalidContent), 400, "InvalidRequestContentException", "bad json"},
		{fmt.Errorf("memory: %w", errdefs.ErrInvalid), 400, "InvalidParameterValueException", "memory"},
		{fmt.Errorf("zip: %w", errdefs.ErrInvalidZip), 400, "InvalidParameterValueException", "zip"},
		{fmt.Errorf("big: %w", errdefs.ErrTooLarge), 413, "RequestTooLargeException", "big"},
		{fmt.Errorf("rev: %w", errdefs.ErrPreconditionFailed), 412, "PreconditionFailedException", "rev"},
		{fmt.Errorf("down: %w", errdefs.ErrUnavailable), 503, "ServiceException", "down"},
		{&errdefs.ThrottleError{Reason: "ReservedFunctionConcurrentInvocationLimitExceeded", Message: "Rate Exceeded."}, 429, "TooManyRequestsException", "Rate Exceeded."},
		{fmt.Errorf("wrapped: %w", &errdefs.AuthError{Kind: errdefs.AuthDenied, Message: "no"}), 403, "AccessDeniedException", ""},
		{&errdefs.AuthError{Kind: errdefs.AuthMissing, Message: "Missing Authentication Token"}, 403, "MissingAuthenticationTokenException", "Missing Authentication Token"},
		{&errdefs.AuthError{Kind: errdefs.AuthIncomplete}, 403, "IncompleteSignatureException", ""},
		{&errdefs.AuthError{Kind: errdefs.AuthUnknownKey}, 403, "UnrecognizedClientException", ""},
		{&errdefs.AuthError{Kind: errdefs.AuthExpiredToken}, 403, "ExpiredTokenException", ""},
		{&errdefs.AuthError{Kind: errdefs.AuthBadSignature}, 403, "InvalidSignatureException", ""},
		// A platform fault is a 500 whose details stay in the server log.
		{errors.New("disk on fire"), 500, "ServiceException", "An internal error occurred in icebox; see the server log."},
	} {
		w := httptest.NewRecorder()
		s.fail(w, httptest.NewRequest("GET", "/", nil), tc.err)
		var body map[string]string
		raw, _ := io.ReadAll(w.Body)
		if err := json.Unmarshal(raw, &body); err != nil {
			t.Fatalf("%v: body %q: %v", tc.err, raw, err)
		}
		msg := body["message"] + body["Message"]
		if w.Code != tc.status || w.Header().Get("X-Amzn-ErrorType") != tc.code || (tc.msg != "" && msg != tc.msg) {
			t.Errorf("%v: %d %s %q, want %d %s %q", tc.err, w.Code, w.Header().Get("X-Amzn-ErrorType"), msg, tc.status, tc.code, tc.msg)
		}
		if te := new(errdefs.ThrottleError); errors.As(tc.err, &te) && (w.Header().Get("Retry-After") == "" || body["Reason"] != te.Reason) {
			t.Errorf("throttle: Retry-After %q Reason %q", w.Header().Get("Retry-After"), body["Reason"])
		}
		if tc.status == http.StatusNotFound && body["Message"] == "" {
			t.Errorf("ResourceNotFoundException carries Message with a capital M: %s", raw)
		}
	}
}
