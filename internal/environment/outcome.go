package environment

import "fmt"

// Kind is how a call (or a start) on an environment ended.
type Kind uint8

const (
	// Ready: the runtime finished its init (Start only).
	Ready Kind = iota
	// Answered: the runtime posted a response.
	Answered
	// FunctionError: the runtime posted an error, an oversized or
	// unreadable response, or asked for the next event without answering;
	// at start, an init error or an entrypoint that cannot run. The
	// environment stays usable after a call's function error.
	FunctionError
	// TimedOut: the deadline passed (the init timeout, at start); the
	// environment was killed.
	TimedOut
	// RuntimeExited: the runtime process ended during the call.
	RuntimeExited
	// OutOfMemory: the runtime was killed by the memory limit.
	OutOfMemory
	// NotTaken: the runtime exited before it took the event; the function
	// never saw it, so the call may run on another environment.
	NotTaken
)

var kindNames = [...]string{"ready", "answered", "function error", "timed out", "runtime exited", "out of memory", "not taken"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Outcome is how one call ended. A function's failure is an Outcome, never
// an error.
type Outcome struct {
	Kind Kind
	// Payload is the runtime's response when Answered; Lambda's error body
	// ({"errorMessage","errorType"}) for every failure.
	Payload []byte
	// ErrorType is the failure's Lambda error type; "" when Answered or Ready.
	ErrorType string
}

// Reusable reports whether the environment may take another call after
// this outcome.
func (o Outcome) Reusable() bool { return o.Kind == Answered || o.Kind == FunctionError }
