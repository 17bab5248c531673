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
	// Stream, when set, takes a response the runtime streams as it
	// arrives (InvokeWithResponseStream, function URLs in RESPONSE_STREAM
	// mode); nil: a streamed response is buffered like any other.
	Stream ResponseStream
	// Tail: the caller asked for the call's log (LogType Tail). Its answer
	// then waits for the call's END and REPORT, which come once the
	// extensions still working on the call are done.
	Tail bool
}

// ResponseStream is the caller's end of a streamed response.
type ResponseStream interface {
	// Start is called once, before the first Write, with the content
	// type the runtime declared.
	Start(contentType string)
	// Write passes one piece of the response on, returning once the
	// caller took it: a slow caller slows the runtime down, nothing piles
	// up in between. An error means the caller is gone; the rest of the
	// response is then read and dropped, as Lambda lets a function run
	// on when its client disconnects.
	Write(p []byte) (int, error)
}

// Response streaming limits (Lambda's): a streamed response is at most
// 200 MiB; its first 6 MiB go out at full speed, the rest at 2 MiB/s.
const (
	MaxStreamedResponseBytes = 200 << 20
	StreamUncappedBytes      = 6 << 20
	StreamBytesPerSecond     = 2 << 20
)

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
