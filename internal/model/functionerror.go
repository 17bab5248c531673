package model

import (
	"encoding/json"
	"strconv"
	"time"
)

// Error types of the function failures icebox observes itself (rather than
// the runtime reporting them), as Lambda names them in the error body.
const (
	ErrorTypeTimedOut          = "Sandbox.Timedout"
	ErrorTypeExit              = "Runtime.ExitError"
	ErrorTypeOutOfMemory       = "Runtime.OutOfMemory"
	ErrorTypeInitError         = "Runtime.InitError"
	ErrorTypeInvalidEntrypoint = "Runtime.InvalidEntrypoint"
	ErrorTypeInvalidResponse   = "Runtime.InvalidResponse"
	ErrorTypeUnknown           = "Runtime.Unknown"
	ErrorTypeResponseTooLarge  = "Function.ResponseSizeTooLarge"
)

// ErrorBody renders Lambda's function error body,
// {"errorMessage":msg,"errorType":typ}.
func ErrorBody(typ, msg string) []byte {
	b, _ := json.Marshal(struct {
		ErrorMessage string `json:"errorMessage"`
		ErrorType    string `json:"errorType"`
	}{msg, typ})
	return b
}

// RequestErrorBody renders the body of a failure the platform reports for
// one request, worded as Lambda words them: "RequestId: <id> Error: <msg>".
func RequestErrorBody(requestID, typ, msg string) []byte {
	return ErrorBody(typ, "RequestId: "+requestID+" Error: "+msg)
}

// TimedOutMessage is Lambda's message for a call that ran past its timeout;
// it is both the error body's and the log line's.
func TimedOutMessage(timeout time.Duration) string {
	return "Task timed out after " + strconv.FormatFloat(timeout.Seconds(), 'f', 2, 64) + " seconds"
}

// StreamTooLargeBody is Lambda's error body for a streamed response over
// its limit (MaxStreamedResponseBytes unless configured otherwise).
func StreamTooLargeBody(limit int64) []byte {
	return ErrorBody(ErrorTypeResponseTooLarge, "Response payload size exceeded maximum allowed payload size ("+strconv.FormatInt(limit, 10)+" bytes).")
}

// ResponseTooLargeBody is Lambda's error body for a response over the limit.
func ResponseTooLargeBody() []byte {
	return ErrorBody(ErrorTypeResponseTooLarge, "Response payload size exceeded maximum allowed payload size ("+strconv.Itoa(MaxResponseBytes)+" bytes).")
}
