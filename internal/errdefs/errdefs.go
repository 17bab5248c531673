// Package errdefs holds the error classes every icebox package uses to say what
// went wrong. Packages wrap them with %w where the failure happens; the API edge
// is the only place that turns a class into an HTTP status and AWS error code.
package errdefs

import "errors"

var (
	// ErrNotFound: the named function, version, log group… does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the resource already exists or is being changed concurrently.
	ErrConflict = errors.New("conflict")
	// ErrInvalid: a parameter is out of range or malformed.
	ErrInvalid = errors.New("invalid parameter")
	// ErrInvalidContent: a request body could not be parsed (not JSON).
	ErrInvalidContent = errors.New("invalid request content")
	// ErrInvalidZip: uploaded code is not a usable zip archive.
	ErrInvalidZip = errors.New("invalid zip file")
	// ErrTooLarge: a payload exceeds a Lambda limit.
	ErrTooLarge = errors.New("request too large")
	// ErrThrottled: no capacity to run the call right now.
	ErrThrottled = errors.New("throttled")
	// ErrPreconditionFailed: a RevisionId did not match.
	ErrPreconditionFailed = errors.New("precondition failed")
	// ErrUnavailable: icebox is shutting down or a dependency is down.
	ErrUnavailable = errors.New("service unavailable")
)

// Lambda's throttling reasons.
const (
	ReasonConcurrentLimit         = "ConcurrentInvocationLimitExceeded"
	ReasonReservedConcurrentLimit = "ReservedFunctionConcurrentInvocationLimitExceeded"
	ReasonFunctionRateLimit       = "FunctionInvocationRateLimitExceeded"
)

// ThrottleError is a call refused for lack of capacity, with Lambda's
// Reason. It is an ErrThrottled.
type ThrottleError struct {
	Reason  string
	Message string
	// RetryAfterSeconds hints when capacity may be back.
	RetryAfterSeconds int
}

func (e *ThrottleError) Error() string { return e.Message }
func (e *ThrottleError) Unwrap() error { return ErrThrottled }

// ErrAuth: the caller is not authenticated or not allowed. The kind says why.
var ErrAuth = errors.New("not authorized")

// AuthKind says why a request was refused by authentication or authorization.
type AuthKind int

const (
	// AuthMissing: the request carries no signature.
	AuthMissing AuthKind = iota
	// AuthIncomplete: the signature's parts are malformed or missing.
	AuthIncomplete
	// AuthUnknownKey: the access key id is not known.
	AuthUnknownKey
	// AuthBadSignature: the signature does not match, or is outside its time.
	AuthBadSignature
	// AuthExpiredToken: temporary credentials have expired.
	AuthExpiredToken
	// AuthDenied: authenticated, but no policy allows the action.
	AuthDenied
)

// AuthError is a request refused by authentication or authorization. It is
// an ErrAuth; Message is shown to the caller and never holds a secret.
type AuthError struct {
	Kind    AuthKind
	Message string
}

func (e *AuthError) Error() string { return e.Message }
func (e *AuthError) Unwrap() error { return ErrAuth }

// Code is the AWS error code of the refusal; every AWS protocol (Lambda's
// REST, CloudWatch Logs' JSON) uses the same names.
func (e *AuthError) Code() string {
	switch e.Kind {
	case AuthMissing:
		return "MissingAuthenticationTokenException"
	case AuthIncomplete:
		return "IncompleteSignatureException"
	case AuthUnknownKey:
		return "UnrecognizedClientException"
	case AuthExpiredToken:
		return "ExpiredTokenException"
	case AuthDenied:
		return "AccessDeniedException"
	}
	return "InvalidSignatureException"
}
