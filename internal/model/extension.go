package model

import "time"

// The Extensions API's (2020-01-01) vocabulary, shared by the environment
// that decides and the Runtime API server that speaks HTTP.

// MaxExtensions is how many extensions may register in one environment.
const MaxExtensions = 10

// Extension event types, as extensions register for them and receive them.
const (
	EventInvoke   = "INVOKE"
	EventShutdown = "SHUTDOWN"
)

// SHUTDOWN reasons, spelled as Lambda's own runtime sends them (its
// documentation capitalizes them): a retired environment (idle, updated,
// deleted, evicted) spins down; one reset after a call or init past its
// deadline times out; one reset after its runtime or an extension crashed,
// or an init error, fails.
const (
	ShutdownSpindown = "spindown"
	ShutdownTimeout  = "timeout"
	ShutdownFailure  = "failure"
)

// Lambda's error types for extensions: an init failed by an extension that
// exited, and the Extensions API's refusals.
const (
	ErrorTypeExtensionCrash        = "Extension.Crash"
	ErrorTypeExtensionName         = "Extension.InvalidExtensionName"
	ErrorTypeRegistrationClosed    = "Extension.RegistrationClosed"
	ErrorTypeUnknownExtension      = "Extension.UnknownExtensionIdentifier"
	ErrorTypeInvalidExtensionState = "Extension.InvalidExtensionState"
	ErrorTypeTooManyExtensions     = "Extension.TooManyExtensions"
	ErrorTypeInvalidExtensionEvent = "Extension.InvalidEventType"
	ErrorTypeMissingHeader         = "Extension.MissingHeader"
)

// ExtensionError is the Extensions API's refusal of an extension's request:
// Type is Lambda's error type (Extension.TooManyExtensions, …).
type ExtensionError struct{ Type, Msg string }

func (e *ExtensionError) Error() string { return e.Type + ": " + e.Msg }

// FunctionInfo is what registration tells an extension about its function.
type FunctionInfo struct {
	Name, Version, Handler, AccountID string
}

// ExtensionEvent is one event an extension receives from event/next.
type ExtensionEvent struct {
	// Type is EventInvoke or EventShutdown.
	Type string
	// Invocation is the call an INVOKE event is about.
	Invocation *Invocation
	// Reason and Deadline are a SHUTDOWN's.
	Reason   string
	Deadline time.Time
}
