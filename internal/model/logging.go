package model

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"

	"icebox/internal/errdefs"
)

// LoggingConfig is Lambda's LoggingConfig: how a function's runtime writes
// its logs and where they go. The zero value is Lambda's default: Text, to
// the function's own log group.
type LoggingConfig struct {
	// LogFormat is LogFormatText (or "") or LogFormatJSON.
	LogFormat string `json:"logFormat,omitempty"`
	// ApplicationLogLevel filters the function's own records and
	// SystemLogLevel the platform's; both need the JSON format, and both
	// default to INFO there.
	ApplicationLogLevel string `json:"applicationLogLevel,omitempty"`
	SystemLogLevel      string `json:"systemLogLevel,omitempty"`
	// LogGroup, when set, replaces /aws/lambda/<name>.
	LogGroup string `json:"logGroup,omitempty"`
}

// Log formats.
const (
	LogFormatText = "Text"
	LogFormatJSON = "JSON"
)

// Lambda's log levels, least severe first.
var (
	ApplicationLogLevels = []string{"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"}
	SystemLogLevels      = []string{"DEBUG", "INFO", "WARN"}
)

const defaultLogLevel = "INFO"

var logGroupRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[\.\-_/#A-Za-z0-9]{1,512}$`) })

// JSON reports whether the function writes JSON records.
func (c *LoggingConfig) JSON() bool { return c != nil && c.LogFormat == LogFormatJSON }

// Format is the effective LogFormat.
func (c *LoggingConfig) Format() string {
	if c.JSON() {
		return LogFormatJSON
	}
	return LogFormatText
}

// ApplicationLevel is the effective ApplicationLogLevel: "" under Text.
func (c *LoggingConfig) ApplicationLevel() string {
	if !c.JSON() {
		return ""
	}
	if c.ApplicationLogLevel == "" {
		return defaultLogLevel
	}
	return c.ApplicationLogLevel
}

// SystemLevel is the effective SystemLogLevel: "" under Text.
func (c *LoggingConfig) SystemLevel() string {
	if !c.JSON() {
		return ""
	}
	if c.SystemLogLevel == "" {
		return defaultLogLevel
	}
	return c.SystemLogLevel
}

// Group is the log group of function name's logs.
func (c *LoggingConfig) Group(name string) string {
	if c == nil || c.LogGroup == "" {
		return LogGroupName(name)
	}
	return c.LogGroup
}

// Merge applies an update: the fields given replace the stored ones, and a
// switch to Text drops the levels, which only JSON has.
func (c *LoggingConfig) Merge(update LoggingConfig) *LoggingConfig {
	out := LoggingConfig{}
	if c != nil {
		out = *c
	}
	if update.LogFormat != "" {
		out.LogFormat = update.LogFormat
	}
	if update.ApplicationLogLevel != "" {
		out.ApplicationLogLevel = update.ApplicationLogLevel
	}
	if update.SystemLogLevel != "" {
		out.SystemLogLevel = update.SystemLogLevel
	}
	if update.LogGroup != "" {
		out.LogGroup = update.LogGroup
	}
	if update.LogFormat == LogFormatText && update.ApplicationLogLevel == "" && update.SystemLogLevel == "" {
		out.ApplicationLogLevel, out.SystemLogLevel = "", ""
	}
	return &out
}

// Validate checks the enums, the group's name, and that levels come with
// the JSON format, as Lambda does.
func (c *LoggingConfig) Validate() error {
	if c == nil {
		return nil
	}
	if c.LogFormat != "" && c.LogFormat != LogFormatText && c.LogFormat != LogFormatJSON {
		return validationEnum(c.LogFormat, "loggingConfig.logFormat", []string{LogFormatJSON, LogFormatText})
	}
	if v := c.ApplicationLogLevel; v != "" && !slices.Contains(ApplicationLogLevels, v) {
		return validationEnum(v, "loggingConfig.applicationLogLevel", ApplicationLogLevels)
	}
	if v := c.SystemLogLevel; v != "" && !slices.Contains(SystemLogLevels, v) {
		return validationEnum(v, "loggingConfig.systemLogLevel", SystemLogLevels)
	}
	if c.LogGroup != "" && !logGroupRE().MatchString(c.LogGroup) {
		return fmt.Errorf("1 validation error detected: Value '%s' at 'loggingConfig.logGroup' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\.\\-_/#A-Za-z0-9]+ and have length 1-512: %w", c.LogGroup, errdefs.ErrInvalid)
	}
	if !c.JSON() && (c.ApplicationLogLevel != "" || c.SystemLogLevel != "") {
		return fmt.Errorf("ApplicationLogLevel and SystemLogLevel can only be set when LogFormat is JSON: %w", errdefs.ErrInvalid)
	}
	return nil
}

func validationEnum(v, field string, set []string) error {
	return fmt.Errorf("1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must satisfy enum value set: [%s]: %w", v, field, strings.Join(set, ", "), errdefs.ErrInvalid)
}
