package model

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"icebox/internal/errdefs"
	"icebox/internal/policy"
)

// Versions and aliases live inside their function's catalog record: a
// publish, an alias change or a version's deletion is one compare-and-set
// of that record, so a version number is never handed out twice and an
// alias never points at a version that a concurrent delete removed.
//
// A published version is a frozen copy of $LATEST's configuration and code
// reference (a Function with Version set). What may still change on it is
// what Lambda lets change on a version: its resource policy, its event
// invoke configuration and its provisioned concurrency.

// Alias is a named pointer to a version, optionally splitting calls with a
// second version (RoutingConfig.AdditionalVersionWeights).
type Alias struct {
	Name            string `json:"name"`
	FunctionVersion string `json:"functionVersion"`
	Description     string `json:"description,omitempty"`
	// Weights are the additional versions and the share of calls each gets
	// (0–1); the rest goes to FunctionVersion.
	Weights     map[string]float64 `json:"weights,omitempty"`
	RevisionID  string             `json:"revisionId"`
	Policy      *policy.Document   `json:"policy,omitempty"`
	EventInvoke *EventInvokeConfig `json:"eventInvoke,omitempty"`
}

// ProvisionedConfig asks for Requested initialized environments of a version
// or alias (Qualifier).
type ProvisionedConfig struct {
	Qualifier    string    `json:"qualifier"`
	Requested    int       `json:"requested"`
	LastModified time.Time `json:"lastModified"`
}

// MaxAdditionalVersions is how many versions besides its own an alias may
// route to (Lambda allows one).
const MaxAdditionalVersions = 1

var aliasRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9_-]{1,128}$`) })

// IsVersionNumber says whether q names a published version (digits only).
func IsVersionNumber(q string) bool {
	if q == "" {
		return false
	}
	for _, c := range q {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// IsAliasName says whether q is a valid alias name: Lambda's
// (?!^[0-9]+$)([a-zA-Z0-9-_]+), 1–128 characters.
func IsAliasName(q string) bool { return aliasRE().MatchString(q) && !IsVersionNumber(q) }

// ValidateAliasName checks an alias name with Lambda's message.
func ValidateAliasName(name string) error {
	if !IsAliasName(name) {
		return fmt.Errorf("1 validation error detected: Value '%s' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: (?!^[0-9]+$)([a-zA-Z0-9-_]+): %w", name, errdefs.ErrInvalid)
	}
	return nil
}

// VersionName is the version this record or view runs: "$LATEST" or a
// published number.
func (f *Function) VersionName() string {
	if f.Version == "" {
		return LatestVersion
	}
	return f.Version
}

// IsAliasView says whether f was resolved through an alias.
func (f *Function) IsAliasView() bool {
	return IsAliasName(f.Qualifier) && f.Qualifier != LatestVersion
}

// QualifiedARN is the ARN the view was resolved through: unqualified when
// the caller named no qualifier.
func (f *Function) QualifiedARN(region, account string) string {
	if f.Qualifier == "" {
		return ARN(region, account, f.Name)
	}
	return ARN(region, account, f.Name) + ":" + f.Qualifier
}

// publishKey identifies what a published version freezes from $LATEST:
// publishing again with the same key publishes nothing.
func (f *Function) publishKey() string {
	b, _ := json.Marshal(struct {
		R, H, Role, D, DL string
		M, T, E           int
		Env               map[string]string
		Code              string
		A                 []string
		L                 *LoggingConfig
		Ly                []FunctionLayer `json:",omitempty"`
		V                 *VpcConfig      `json:",omitempty"`
	}{f.Runtime, f.Handler, f.Role, f.Description, f.DeadLetterTarget, f.MemorySize, f.Timeout, f.EphemeralStorage, f.Environment, f.CodeSha256, f.Architectures, f.Logging, f.Layers, f.Vpc})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// Publish freezes $LATEST as a new version numbered after every version
// ever published, unless the newest version already has $LATEST's code
// and configuration: then it returns that one and published is false.
// description, when set, replaces the function's for the version.
// Preconditions: f is a function's record ($LATEST).
func (f *Function) Publish(description string, now time.Time) (v Function, published bool) {
	key := f.publishKey()
	if n := len(f.Versions); n > 0 && f.Versions[n-1].PublishedFrom == key {
		return f.Versions[n-1], false
	}
	f.LastVersion++
	v = Function{
		Name: f.Name, Runtime: f.Runtime, Handler: f.Handler, Role: f.Role, Description: f.Description,
		MemorySize: f.MemorySize, Timeout: f.Timeout, EphemeralStorage: f.EphemeralStorage,
		Environment: maps.Clone(f.Environment), Architectures: slices.Clone(f.Architectures),
		CodeSha256: f.CodeSha256, CodeSize: f.CodeSize, DeadLetterTarget: f.DeadLetterTarget,
		Version: strconv.Itoa(f.LastVersion), PublishedFrom: key,
		RevisionID: NewUUID(), LastModified: now,
	}
	v.UnzippedSize, v.Layers, v.Vpc = f.UnzippedSize, slices.Clone(f.Layers), f.Vpc.Clone()
	if description != "" {
		v.Description = description
	}
	if f.Logging != nil {
		l := *f.Logging
		v.Logging = &l
	}
	f.Versions = append(f.Versions, v)
	return v, true
}

// errNoQualifier is View's answer for a version or alias the function does
// not have; callers name it with the function's ARN.
var errNoQualifier = errors.New("no such qualifier")

// IsNoQualifier says whether err is View's "no such version or alias".
func IsNoQualifier(err error) bool { return errors.Is(err, errNoQualifier) }

// View is the function as a qualifier names it: "" or "$LATEST" the record
// itself, a number that published version, an alias name the version the
// alias points to (for a weighted alias, its main version), with the
// alias's own policy and event invoke configuration. The view's Qualifier
// is q. Function-wide settings (reserved concurrency, tags) come with every
// view. This is the one place qualifiers are resolved.
// Preconditions: f is a function's record ($LATEST).
func (f *Function) View(q string) (Function, error) {
	switch {
	case q == "" || q == LatestVersion:
		v := *f
		v.Qualifier = q
		return v, nil
	case IsVersionNumber(q):
		for _, v := range f.Versions {
			if v.Version == q {
				v.ReservedConcurrency, v.Tags, v.Qualifier = f.ReservedConcurrency, f.Tags, q
				return v, nil
			}
		}
	default:
		if a := f.AliasNamed(q); a != nil {
			v, err := f.View(a.FunctionVersion)
			if err != nil {
				return Function{}, err
			}
			v.Policy, v.EventInvoke, v.Qualifier = a.Policy, a.EventInvoke, q
			return v, nil
		}
	}
	return Function{}, errNoQualifier
}

// AliasNamed returns the alias called name, or nil.
func (f *Function) AliasNamed(name string) *Alias {
	for i := range f.Aliases {
		if f.Aliases[i].Name == name {
			return &f.Aliases[i]
		}
	}
	return nil
}

// Route picks the version a call through alias a runs: an additional
// version with its weight's probability, else the alias's own. r is
// uniform in [0, 1).
func (a *Alias) Route(r float64) string {
	for v, w := range a.Weights {
		if r < w {
			return v
		}
		r -= w
	}
	return a.FunctionVersion
}

// ValidateAlias checks an alias against f's versions as Lambda does: it
// targets $LATEST or a published version; additional weights name at most
// one other published version with the same role and dead-letter target,
// each weight within 0–1, and the alias's own version must then be
// published too.
// Preconditions: f is a function's record ($LATEST).
func (f *Function) ValidateAlias(a *Alias) error {
	if err := ValidateAliasName(a.Name); err != nil {
		return err
	}
	if len(a.Description) > 256 {
		return fmt.Errorf("1 validation error detected: Value at 'description' failed to satisfy constraint: Member must have length less than or equal to 256: %w", errdefs.ErrInvalid)
	}
	if a.FunctionVersion != LatestVersion && !IsVersionNumber(a.FunctionVersion) {
		return fmt.Errorf("1 validation error detected: Value '%s' at 'functionVersion' failed to satisfy constraint: Member must satisfy regular expression pattern: (\\$LATEST|[0-9]+): %w", a.FunctionVersion, errdefs.ErrInvalid)
	}
	if _, err := f.View(a.FunctionVersion); err != nil {
		return fmt.Errorf("Function not found: %s:%s: %w", f.Name, a.FunctionVersion, errdefs.ErrNotFound)
	}
	if len(a.Weights) == 0 {
		return nil
	}
	if len(a.Weights) > MaxAdditionalVersions {
		return fmt.Errorf("1 validation error detected: Value at 'routingConfig.additionalVersionWeights' failed to satisfy constraint: Member must have length less than or equal to %d: %w", MaxAdditionalVersions, errdefs.ErrInvalid)
	}
	if a.FunctionVersion == LatestVersion {
		return fmt.Errorf("$LATEST is not supported for an alias pointing to more than 1 version: %w", errdefs.ErrInvalid)
	}
	for v, w := range a.Weights {
		if !IsVersionNumber(v) {
			return fmt.Errorf("1 validation error detected: Value '%s' at 'routingConfig.additionalVersionWeights' failed to satisfy constraint: Map keys must satisfy constraint: [Member must satisfy regular expression pattern: [0-9]+]: %w", v, errdefs.ErrInvalid)
		}
		if w < 0 || w > 1 {
			return fmt.Errorf("1 validation error detected: Value '%v' at 'routingConfig.additionalVersionWeights' failed to satisfy constraint: Map value must satisfy constraint: [Member must have value less than or equal to 1.0, Member must have value greater than or equal to 0.0]: %w", w, errdefs.ErrInvalid)
		}
		if v == a.FunctionVersion {
			return fmt.Errorf("Invalid function version %s. Function version %s is already included in routing configuration.: %w", v, v, errdefs.ErrInvalid)
		}
		other, err := f.View(v)
		if err != nil {
			return fmt.Errorf("Function not found: %s:%s: %w", f.Name, v, errdefs.ErrNotFound)
		}
		// Lambda routes between versions only when they run as the same
		// role and send failed events to the same place.
		if main, _ := f.View(a.FunctionVersion); other.Role != main.Role || other.DeadLetterTarget != main.DeadLetterTarget {
			return fmt.Errorf("Versions %s and %s of %s must have the same execution role and dead-letter configuration to share an alias's traffic: %w", a.FunctionVersion, v, f.Name, errdefs.ErrInvalid)
		}
	}
	return nil
}

// AliasesOf lists the aliases that route calls to version v, by name.
func (f *Function) AliasesOf(v string) []string {
	var out []string
	for _, a := range f.Aliases {
		if _, weighted := a.Weights[v]; a.FunctionVersion == v || weighted {
			out = append(out, a.Name)
		}
	}
	return out
}

// Settings are what may change on one qualifier: its resource policy, its
// event invoke configuration and the revision id guarding both.
type Settings struct {
	Policy      **policy.Document
	EventInvoke **EventInvokeConfig
	RevisionID  *string
}

// SettingsOf returns where the qualifier q keeps its settings: the record's
// own for "" and $LATEST, else the version's or the alias's.
// Preconditions: f is a function's record ($LATEST).
func (f *Function) SettingsOf(q string) (Settings, error) {
	switch {
	case q == "" || q == LatestVersion:
		return Settings{&f.Policy, &f.EventInvoke, &f.RevisionID}, nil
	case IsVersionNumber(q):
		for i := range f.Versions {
			if v := &f.Versions[i]; v.Version == q {
				return Settings{&v.Policy, &v.EventInvoke, &v.RevisionID}, nil
			}
		}
	default:
		if a := f.AliasNamed(q); a != nil {
			return Settings{&a.Policy, &a.EventInvoke, &a.RevisionID}, nil
		}
	}
	return Settings{}, errNoQualifier
}

// LiveKeys are the ConfigKeys of everything of f that can run: $LATEST and
// every published version.
func (f *Function) LiveKeys() []string {
	keys := []string{f.ConfigKey()}
	for i := range f.Versions {
		keys = append(keys, f.Versions[i].ConfigKey())
	}
	return keys
}

// UsesCode says whether $LATEST or a published version runs the code sha,
// as its code or a layer's.
func (f *Function) UsesCode(sha string) bool {
	if f.CodeSha256 == sha || slices.Contains(f.layerShas(), sha) {
		return true
	}
	for i := range f.Versions {
		if f.Versions[i].UsesCode(sha) {
			return true
		}
	}
	return false
}

// ConfigSlot is the part of a ConfigKey naming what runs ("name:version"):
// environments of one slot with another key are stale.
func ConfigSlot(key string) string {
	slot, _, _ := strings.Cut(key, "/")
	return slot
}

// Provision is a share of a provisioned concurrency configuration: Count
// environments of one version (View).
type Provision struct {
	View  Function
	Count int
}

// Provisions splits pc over the versions it runs: all of it on a version
// or an unweighted alias's version; a weighted alias's by its weights, each
// additional version getting its rounded share and the alias's own the
// rest. A qualifier that no longer exists runs nothing.
// Preconditions: f is a function's record ($LATEST).
func (f *Function) Provisions(pc ProvisionedConfig) []Provision {
	v, err := f.View(pc.Qualifier)
	if err != nil {
		return nil
	}
	var out []Provision
	rest := pc.Requested
	if a := f.AliasNamed(pc.Qualifier); a != nil {
		for _, num := range slices.Sorted(maps.Keys(a.Weights)) {
			other, err := f.View(num)
			if n := int(math.Round(float64(pc.Requested) * a.Weights[num])); err == nil && n > 0 {
				out = append(out, Provision{View: other, Count: min(n, rest)})
				rest -= min(n, rest)
			}
		}
	}
	if rest > 0 {
		out = append(out, Provision{View: v, Count: rest})
	}
	return out
}

// ProvisionedFor returns the provisioned concurrency configuration of the
// qualifier q, or nil.
func (f *Function) ProvisionedFor(q string) *ProvisionedConfig {
	for i := range f.Provisioned {
		if f.Provisioned[i].Qualifier == q {
			return &f.Provisioned[i]
		}
	}
	return nil
}
