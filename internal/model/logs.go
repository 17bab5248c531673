package model

import (
	"strings"
	"time"
)

// How Lambda names a function's logs: one place for every package.

const logGroupPrefix = "/aws/lambda/"

// LogGroupName is a function's CloudWatch log group.
func LogGroupName(function string) string { return logGroupPrefix + function }

// LogGroupFunction is the function a log group belongs to; ok is false for
// a group that is not a function's.
func LogGroupFunction(group string) (function string, ok bool) {
	return strings.CutPrefix(group, logGroupPrefix)
}

// LogStreamName is Lambda's stream for one execution environment:
// YYYY/MM/DD/[VERSION]ID.
func LogStreamName(created time.Time, version, envID string) string {
	return created.UTC().Format("2006/01/02") + "/[" + version + "]" + envID
}
