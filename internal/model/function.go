// Package model holds icebox's domain types: functions, invocations and their
// results. It does no I/O.
package model

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"icebox/internal/errdefs"
	"icebox/internal/policy"
)

// Lambda's limits and defaults for function configuration.
const (
	MinMemoryMB          = 128
	MaxMemoryMB          = 10240
	DefaultMemoryMB      = 128
	MinTimeoutSec        = 1
	MaxTimeoutSec        = 900
	DefaultTimeoutSec    = 3
	MinEphemeralMB       = 512
	MaxEphemeralMB       = 10240
	DefaultEphemeralMB   = 512
	MaxEnvironmentBytes  = 4096
	MaxZipBytes          = 50 << 20
	MaxUnzippedBytes     = 250 << 20
	MaxSyncPayloadBytes  = 6291456
	MaxAsyncPayloadBytes = 1 << 20
	// MaxResponseBytes is the figure Lambda quotes in its ResponseSizeTooLarge message.
	MaxResponseBytes = 6291556
	LatestVersion    = "$LATEST"
)

// Function is one function's $LATEST configuration as stored in the catalog.
type Function struct {
	Name             string            `json:"name"`
	Runtime          string            `json:"runtime"`
	Handler          string            `json:"handler"`
	Role             string            `json:"role"`
	Description      string            `json:"description,omitempty"`
	MemorySize       int               `json:"memorySize"`
	Timeout          int               `json:"timeout"`
	EphemeralStorage int               `json:"ephemeralStorage"`
	Environment      map[string]string `json:"environment,omitempty"`
	Architectures    []string          `json:"architectures"`
	// CodeSha256 is the base64 SHA-256 of the zip, as Lambda reports it.
	CodeSha256 string `json:"codeSha256"`
	CodeSize   int64  `json:"codeSize"`
	// UnzippedSize is what the code unzips to, for the limit on code and
	// layers together; 0 for code stored before it was recorded.
	UnzippedSize int64     `json:"unzippedSize,omitempty"`
	LastModified time.Time `json:"lastModified"`
	RevisionID   string    `json:"revisionId"`
	// ReservedConcurrency, when set, is both guaranteed to the function and
	// its cap; 0 stops it from running. It does not affect environments.
	ReservedConcurrency *int `json:"reservedConcurrency,omitempty"`
	// DeadLetterTarget receives events that asynchronous invocation gave up
	// on (a function ARN: icebox's extension of Lambda's SQS/SNS targets).
	DeadLetterTarget string `json:"deadLetterTarget,omitempty"`
	// EventInvoke configures asynchronous invocation; nil means defaults.
	EventInvoke *EventInvokeConfig `json:"eventInvoke,omitempty"`
	// Policy is the resource policy AddPermission builds; nil when empty.
	Policy *policy.Document `json:"policy,omitempty"`
	// Tags are the function's tags (CreateFunction, TagResource); they
	// take no part in how it runs.
	Tags map[string]string `json:"tags,omitempty"`
	// Logging is the function's LoggingConfig; nil means Lambda's defaults.
	Logging *LoggingConfig `json:"logging,omitempty"`

	// Version is "" in a function's record ($LATEST) and the number of a
	// published version (version.go).
	Version string `json:"version,omitempty"`
	// PublishedFrom is, on a published version, the publish key of the
	// $LATEST it froze.
	PublishedFrom string `json:"publishedFrom,omitempty"`
	// Versions are the published versions, oldest first; LastVersion is
	// the highest number ever published (numbers are never reused).
	Versions    []Function `json:"versions,omitempty"`
	LastVersion int        `json:"lastVersion,omitempty"`
	Aliases     []Alias    `json:"aliases,omitempty"`
	// Provisioned are the provisioned concurrency configurations, one per
	// version or alias.
	Provisioned []ProvisionedConfig `json:"provisioned,omitempty"`

	// Qualifier is, on a view (View), the qualifier it was resolved
	// through: "", "$LATEST", a version number or an alias name. Never stored.
	Qualifier string `json:"-"`
	// URLs are the function's function URLs, one per qualifier; they take
	// no part in how it runs.
	URLs []FunctionURL `json:"urls,omitempty"`
	// Layers are extracted into /opt in order, later ones winning.
	Layers []FunctionLayer `json:"layers,omitempty"`
	// Vpc is the function's VpcConfig; nil or no subnets: the default
	// egress policy (network.go).
	Vpc *VpcConfig `json:"vpc,omitempty"`
}

// EventInvokeConfig is Lambda's FunctionEventInvokeConfig.
type EventInvokeConfig struct {
	MaximumRetryAttempts     *int      `json:"maximumRetryAttempts,omitempty"`
	MaximumEventAgeInSeconds *int      `json:"maximumEventAgeInSeconds,omitempty"`
	OnSuccess                string    `json:"onSuccess,omitempty"` // destination ARN
	OnFailure                string    `json:"onFailure,omitempty"`
	LastModified             time.Time `json:"lastModified"`
}

// Asynchronous invocation defaults and bounds.
const (
	DefaultMaxRetryAttempts = 2
	MaxRetryAttempts        = 2
	DefaultMaxEventAgeSec   = 21600
	MinMaxEventAgeSec       = 60
)

// Retries is the effective MaximumRetryAttempts.
func (c *EventInvokeConfig) Retries() int {
	if c == nil || c.MaximumRetryAttempts == nil {
		return DefaultMaxRetryAttempts
	}
	return *c.MaximumRetryAttempts
}

// MaxAge is the effective MaximumEventAgeInSeconds.
func (c *EventInvokeConfig) MaxAge() time.Duration {
	if c == nil || c.MaximumEventAgeInSeconds == nil {
		return DefaultMaxEventAgeSec * time.Second
	}
	return time.Duration(*c.MaximumEventAgeInSeconds) * time.Second
}

// Validate checks Lambda's bounds. Destinations are checked by the caller,
// which knows which targets it can deliver to.
func (c *EventInvokeConfig) Validate() error {
	if r := c.MaximumRetryAttempts; r != nil && (*r < 0 || *r > MaxRetryAttempts) {
		return fmt.Errorf("1 validation error detected: Value '%d' at 'maximumRetryAttempts' failed to satisfy constraint: Member must have value less than or equal to 2: %w", *r, errdefs.ErrInvalid)
	}
	if a := c.MaximumEventAgeInSeconds; a != nil && (*a < MinMaxEventAgeSec || *a > DefaultMaxEventAgeSec) {
		return fmt.Errorf("1 validation error detected: Value '%d' at 'maximumEventAgeInSeconds' failed to satisfy constraint: Member must have value between 60 and 21600, inclusive: %w", *a, errdefs.ErrInvalid)
	}
	return nil
}

// Patterns are compiled on first use, not at package init: every sandbox's
// init re-executes this binary and would build and keep them for nothing.
var (
	nameRE   = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`) })
	envKeyRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_]+$`) })
	roleRE   = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+$`)
	})
)

// ReservedEnv are the variables Lambda sets itself; a user may not set them.
// TZ, LANG, PATH and LD_LIBRARY_PATH are set by Lambda too but a user may override them.
var ReservedEnv = map[string]bool{
	"_HANDLER": true, "_X_AMZN_TRACE_ID": true, "AWS_REGION": true, "AWS_DEFAULT_REGION": true,
	"AWS_EXECUTION_ENV": true, "AWS_LAMBDA_FUNCTION_NAME": true, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": true,
	"AWS_LAMBDA_FUNCTION_VERSION": true, "AWS_LAMBDA_INITIALIZATION_TYPE": true,
	"AWS_LAMBDA_LOG_GROUP_NAME": true, "AWS_LAMBDA_LOG_STREAM_NAME": true, "AWS_ACCESS_KEY": true,
	"AWS_ACCESS_KEY_ID": true, "AWS_SECRET_ACCESS_KEY": true, "AWS_SESSION_TOKEN": true,
	"AWS_LAMBDA_RUNTIME_API": true, "LAMBDA_TASK_ROOT": true, "LAMBDA_RUNTIME_DIR": true,
}

// ValidateName checks a bare function name.
func ValidateName(name string) error {
	if !nameRE().MatchString(name) {
		return fmt.Errorf("1 validation error detected: Value '%s' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9-_]+ and have length 1-64: %w", name, errdefs.ErrInvalid)
	}
	return nil
}

// ApplyDefaults fills unset fields with Lambda's defaults.
func (f *Function) ApplyDefaults() {
	if f.MemorySize == 0 {
		f.MemorySize = DefaultMemoryMB
	}
	if f.Timeout == 0 {
		f.Timeout = DefaultTimeoutSec
	}
	if f.EphemeralStorage == 0 {
		f.EphemeralStorage = DefaultEphemeralMB
	}
	if len(f.Architectures) == 0 {
		f.Architectures = []string{"x86_64"}
	}
}

// Validate checks the configuration against Lambda's constraints. Messages
// follow Lambda's wording where Lambda has one.
func (f *Function) Validate() error {
	if err := ValidateName(f.Name); err != nil {
		return err
	}
	if f.MemorySize < MinMemoryMB || f.MemorySize > MaxMemoryMB {
		return fmt.Errorf("1 validation error detected: Value '%d' at 'memorySize' failed to satisfy constraint: Member must have value between %d and %d, inclusive: %w", f.MemorySize, MinMemoryMB, MaxMemoryMB, errdefs.ErrInvalid)
	}
	if f.Timeout < MinTimeoutSec || f.Timeout > MaxTimeoutSec {
		return fmt.Errorf("1 validation error detected: Value '%d' at 'timeout' failed to satisfy constraint: Member must have value between %d and %d, inclusive: %w", f.Timeout, MinTimeoutSec, MaxTimeoutSec, errdefs.ErrInvalid)
	}
	if f.EphemeralStorage < MinEphemeralMB || f.EphemeralStorage > MaxEphemeralMB {
		return fmt.Errorf("1 validation error detected: Value '%d' at 'ephemeralStorage.size' failed to satisfy constraint: Member must have value between %d and %d, inclusive: %w", f.EphemeralStorage, MinEphemeralMB, MaxEphemeralMB, errdefs.ErrInvalid)
	}
	if f.Role == "" || !roleRE().MatchString(f.Role) {
		return fmt.Errorf("1 validation error detected: Value '%s' at 'role' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*)?:iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+: %w", f.Role, errdefs.ErrInvalid)
	}
	if len(f.Description) > 256 {
		return fmt.Errorf("1 validation error detected: Value at 'description' failed to satisfy constraint: Member must have length less than or equal to 256: %w", errdefs.ErrInvalid)
	}
	for _, a := range f.Architectures {
		if a != "x86_64" {
			return fmt.Errorf("architecture %q is not supported on this host (x86_64 only): %w", a, errdefs.ErrInvalid)
		}
	}
	if len(f.Architectures) != 1 {
		return fmt.Errorf("1 validation error detected: Value at 'architectures' failed to satisfy constraint: Member must have length less than or equal to 1: %w", errdefs.ErrInvalid)
	}
	if err := ValidateTags(f.Tags); err != nil {
		return err
	}
	if err := f.Logging.Validate(); err != nil {
		return err
	}
	if f.EventInvoke != nil {
		if err := f.EventInvoke.Validate(); err != nil {
			return err
		}
	}
	return ValidateEnvironment(f.Environment)
}

// ValidateEnvironment checks user environment variables: key syntax, values
// a process environment can hold, reserved keys and Lambda's 4 KB total.
func ValidateEnvironment(env map[string]string) error {
	var reserved []string
	size := 0
	for k, v := range env {
		if !envKeyRE().MatchString(k) {
			return fmt.Errorf("1 validation error detected: Value at 'environment.variables' failed to satisfy constraint: Map keys must satisfy constraint: [Member must satisfy regular expression pattern: [a-zA-Z]([a-zA-Z0-9_])+] (key %q): %w", k, errdefs.ErrInvalid)
		}
		if strings.IndexByte(v, 0) >= 0 {
			// execve takes C strings: such a value could never reach the
			// function, so it fails here rather than at every cold start.
			return fmt.Errorf("1 validation error detected: Value at 'environment.variables' failed to satisfy constraint: Map values must not contain the NUL character (key %q): %w", k, errdefs.ErrInvalid)
		}
		if ReservedEnv[k] {
			reserved = append(reserved, k)
		}
		size += len(k) + len(v)
	}
	if len(reserved) > 0 {
		sort.Strings(reserved)
		return fmt.Errorf("Lambda was unable to configure your environment variables because the environment variables you have provided contains reserved keys that are currently not supported for modification. Reserved keys used in this request: %s: %w", strings.Join(reserved, ", "), errdefs.ErrInvalid)
	}
	if size > MaxEnvironmentBytes {
		return fmt.Errorf("Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit. String measured: %d bytes: %w", size, errdefs.ErrInvalid)
	}
	return nil
}

// ConfigKey identifies everything an execution environment is built from,
// the version it runs included ("name:version/hash"). Two environments with
// the same key are interchangeable; a change of key means old environments
// must be drained.
func (f *Function) ConfigKey() string {
	b, _ := json.Marshal(struct {
		R, H, Role string
		M, T, E    int
		Env        map[string]string
		Code       string
		Logging    *LoggingConfig `json:",omitempty"`
		// Omitted when empty, so functions without layers keep their key.
		Layers []string   `json:",omitempty"`
		Vpc    *VpcConfig `json:",omitempty"`
	}{f.Runtime, f.Handler, f.Role, f.MemorySize, f.Timeout, f.EphemeralStorage, f.Environment, f.CodeSha256, f.Logging, f.layerShas(), f.Vpc})
	sum := sha256.Sum256(b)
	return f.Name + ":" + f.VersionName() + "/" + hex.EncodeToString(sum[:8])
}

// layerShas lists the content of the function's layers, in order.
func (f *Function) layerShas() []string {
	var out []string
	for _, l := range f.Layers {
		out = append(out, l.CodeSha256)
	}
	return out
}

// ARN is the function's unqualified ARN.
func ARN(region, account, name string) string {
	return fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", region, account, name)
}
