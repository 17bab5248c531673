package model

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"icebox/internal/errdefs"
	"icebox/internal/policy"
)

// Lambda's limits on layers.
const (
	// MaxFunctionLayers is how many layers one function may use.
	MaxFunctionLayers        = 5
	maxLayerNameChars        = 140 // the whole LayerName parameter, an ARN included
	maxLayerDescriptionChars = 256
	maxLicenseInfoChars      = 512
	maxCompatibleRuntimes    = 15
	maxCompatibleArchs       = 2
)

// LayerVersion is one published version of a layer as stored. Its content
// lives in the code store under CodeSha256, like a function's code.
type LayerVersion struct {
	Name                    string    `json:"name"`
	Version                 int64     `json:"version"`
	Description             string    `json:"description,omitempty"`
	CompatibleRuntimes      []string  `json:"compatibleRuntimes,omitempty"`
	CompatibleArchitectures []string  `json:"compatibleArchitectures,omitempty"`
	LicenseInfo             string    `json:"licenseInfo,omitempty"`
	CodeSha256              string    `json:"codeSha256"`
	CodeSize                int64     `json:"codeSize"`
	UnzippedSize            int64     `json:"unzippedSize"`
	Created                 time.Time `json:"created"`
	// Policy is the version's resource policy (AddLayerVersionPermission);
	// nil when empty. RevisionID changes with it.
	Policy     *policy.Document `json:"policy,omitempty"`
	RevisionID string           `json:"revisionId"`
}

// FunctionLayer is a layer version a function uses, with what its
// environments need of it, copied when it was attached: the content stays
// usable after the layer version is deleted, as on Lambda.
type FunctionLayer struct {
	Arn          string `json:"arn"`
	CodeSha256   string `json:"codeSha256"`
	CodeSize     int64  `json:"codeSize"`
	UnzippedSize int64  `json:"unzippedSize"`
}

// Patterns are compiled on first use (see nameRE).
var (
	layerNameRE = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^(?:arn:[a-zA-Z0-9-]+:lambda:([a-zA-Z0-9-]+):(\d{12}):layer:)?([a-zA-Z0-9_-]+)$`)
	})
	layerVersionArnRE = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^arn:[a-zA-Z0-9-]+:lambda:([a-zA-Z0-9-]+):(\d{12}):layer:([a-zA-Z0-9_-]+):([0-9]+)$`)
	})
)

// LayerRef is a layer named by a request: its region and account (empty
// when given as a bare name) and name.
type LayerRef struct {
	Region, Account, Name string
}

// ParseLayerName reads LayerName as Lambda takes it: a name or a layer's
// unversioned ARN.
func ParseLayerName(s string) (LayerRef, error) {
	m := layerNameRE().FindStringSubmatch(s)
	if m == nil || len(s) > maxLayerNameChars {
		return LayerRef{}, fmt.Errorf("1 validation error detected: Value '%s' at 'layerName' failed to satisfy constraint: Member must satisfy regular expression pattern: (arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\\d{12}:layer:[a-zA-Z0-9-_]+)|[a-zA-Z0-9-_]+: %w", s, errdefs.ErrInvalid)
	}
	return LayerRef{Region: m[1], Account: m[2], Name: m[3]}, nil
}

// ParseLayerVersionArn reads a layer version ARN (a function's Layers
// entry, GetLayerVersionByArn's Arn).
func ParseLayerVersionArn(field, s string) (LayerRef, int64, error) {
	m := layerVersionArnRE().FindStringSubmatch(s)
	var v int64
	var err error
	if m != nil {
		v, err = strconv.ParseInt(m[4], 10, 64)
	}
	if m == nil || err != nil || v < 1 || len(s) > maxLayerNameChars {
		return LayerRef{}, 0, fmt.Errorf("1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+: %w", s, field, errdefs.ErrInvalid)
	}
	return LayerRef{Region: m[1], Account: m[2], Name: m[3]}, v, nil
}

// LayerArn is a layer's unversioned ARN.
func LayerArn(region, account, name string) string {
	return fmt.Sprintf("arn:aws:lambda:%s:%s:layer:%s", region, account, name)
}

// LayerVersionArn is a layer version's ARN.
func LayerVersionArn(region, account, name string, version int64) string {
	return LayerArn(region, account, name) + ":" + strconv.FormatInt(version, 10)
}

// layerRuntimes is Lambda's Runtime enum as CompatibleRuntimes takes it:
// a layer may name runtimes this host cannot run, as it may on Lambda.
var layerRuntimes = []string{
	"nodejs", "nodejs4.3", "nodejs6.10", "nodejs8.10", "nodejs10.x", "nodejs12.x", "nodejs14.x", "nodejs16.x",
	"nodejs18.x", "nodejs20.x", "nodejs22.x", "nodejs24.x", "nodejs4.3-edge",
	"java8", "java8.al2", "java11", "java17", "java21", "java25",
	"python2.7", "python3.6", "python3.7", "python3.8", "python3.9", "python3.10", "python3.11", "python3.12",
	"python3.13", "python3.14",
	"dotnetcore1.0", "dotnetcore2.0", "dotnetcore2.1", "dotnetcore3.1", "dotnet6", "dotnet8", "dotnet10",
	"go1.x", "ruby2.5", "ruby2.7", "ruby3.2", "ruby3.3", "ruby3.4",
	"provided", "provided.al2", "provided.al2023",
}

// Validate checks what PublishLayerVersion takes, with Lambda's messages.
func (l *LayerVersion) Validate() error {
	if _, err := ParseLayerName(l.Name); err != nil {
		return err
	}
	if len(l.Description) > maxLayerDescriptionChars {
		return fmt.Errorf("1 validation error detected: Value at 'description' failed to satisfy constraint: Member must have length less than or equal to %d: %w", maxLayerDescriptionChars, errdefs.ErrInvalid)
	}
	if len(l.LicenseInfo) > maxLicenseInfoChars {
		return fmt.Errorf("1 validation error detected: Value at 'licenseInfo' failed to satisfy constraint: Member must have length less than or equal to %d: %w", maxLicenseInfoChars, errdefs.ErrInvalid)
	}
	if len(l.CompatibleRuntimes) > maxCompatibleRuntimes {
		return fmt.Errorf("1 validation error detected: Value at 'compatibleRuntimes' failed to satisfy constraint: Member must have length less than or equal to %d: %w", maxCompatibleRuntimes, errdefs.ErrInvalid)
	}
	for _, r := range l.CompatibleRuntimes {
		if !slices.Contains(layerRuntimes, r) {
			return fmt.Errorf("1 validation error detected: Value '[%s]' at 'compatibleRuntimes' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: [%s]]: %w",
				strings.Join(l.CompatibleRuntimes, ", "), strings.Join(layerRuntimes, ", "), errdefs.ErrInvalid)
		}
	}
	if len(l.CompatibleArchitectures) > maxCompatibleArchs {
		return fmt.Errorf("1 validation error detected: Value at 'compatibleArchitectures' failed to satisfy constraint: Member must have length less than or equal to %d: %w", maxCompatibleArchs, errdefs.ErrInvalid)
	}
	for _, a := range l.CompatibleArchitectures {
		if a != "x86_64" && a != "arm64" {
			return fmt.Errorf("1 validation error detected: Value '[%s]' at 'compatibleArchitectures' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: [x86_64, arm64]]: %w",
				strings.Join(l.CompatibleArchitectures, ", "), errdefs.ErrInvalid)
		}
	}
	return nil
}

// CheckUnzippedTotal refuses a function whose code and layers together
// unzip to more than Lambda allows, with Lambda's message.
func CheckUnzippedTotal(code int64, layers []FunctionLayer) error {
	total := code
	for _, l := range layers {
		total += l.UnzippedSize
	}
	if total > MaxUnzippedBytes {
		return fmt.Errorf("Function code combined with layers exceeds the maximum allowed size of %d bytes. The actual size is %d bytes.: %w", MaxUnzippedBytes, total, errdefs.ErrInvalid)
	}
	return nil
}
