package model

import "time"

// Invocation is one call to deliver to an execution environment.
type Invocation struct {
	RequestID     string
	FunctionARN   string
	Payload       []byte
	ClientContext string // JSON, already decoded from the caller's base64
	TraceID       string
	Deadline      time.Time
}

// Function error kinds as the X-Amz-Function-Error header carries them.
const (
	FunctionErrorUnhandled = "Unhandled"
	FunctionErrorHandled   = "Handled"
)

// Result is the outcome of an invocation. A function failure (handler error,
// crash, timeout, out of memory) is a Result with FunctionError set, never a Go
// error.
type Result struct {
	RequestID       string
	Payload         []byte
	FunctionError   string // "" on success
	ExecutedVersion string
	// LogTail is the invocation's log, kept to the last 4 KB.
	LogTail      []byte
	Duration     time.Duration
	InitDuration time.Duration // zero unless this call paid a cold start
	ColdStart    bool
}
