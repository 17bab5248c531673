package api

import (
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"icebox/internal/errdefs"
	"icebox/internal/invoke"
	"icebox/internal/model"
)

// lambdaTime is how Lambda writes timestamps (LastModified).
const lambdaTime = "2006-01-02T15:04:05.000-0700"

type environment struct {
	Variables map[string]string `json:"Variables"`
}

type ephemeralStorage struct {
	Size int `json:"Size"`
}

type functionCode struct {
	ZipFile         []byte  `json:"ZipFile"`
	S3Bucket        *string `json:"S3Bucket"`
	S3Key           *string `json:"S3Key"`
	ImageURI        *string `json:"ImageUri"`
	S3ObjectVersion *string `json:"S3ObjectVersion"`
	SourceKMSKeyArn *string `json:"SourceKMSKeyArn"`
}

type createFunctionInput struct {
	FunctionName     string            `json:"FunctionName"`
	Runtime          string            `json:"Runtime"`
	Role             string            `json:"Role"`
	Handler          string            `json:"Handler"`
	Description      string            `json:"Description"`
	Timeout          *int              `json:"Timeout"`
	MemorySize       *int              `json:"MemorySize"`
	Code             functionCode      `json:"Code"`
	Environment      *environment      `json:"Environment"`
	Architectures    []string          `json:"Architectures"`
	EphemeralStorage *ephemeralStorage `json:"EphemeralStorage"`
	PackageType      string            `json:"PackageType"`
	Publish          bool              `json:"Publish"`
	DeadLetterConfig *deadLetterConfig `json:"DeadLetterConfig"`
	Tags             map[string]string `json:"Tags"`
	LoggingConfig    *loggingConfig    `json:"LoggingConfig"`
	optionalConfig
	createOnlyConfig
}

// loggingConfig is Lambda's LoggingConfig shape.
type loggingConfig struct {
	LogFormat           string `json:"LogFormat,omitempty"`
	ApplicationLogLevel string `json:"ApplicationLogLevel,omitempty"`
	SystemLogLevel      string `json:"SystemLogLevel,omitempty"`
	LogGroup            string `json:"LogGroup,omitempty"`
}

type deadLetterConfig struct {
	TargetArn string `json:"TargetArn"`
}

// functionConfiguration is Lambda's FunctionConfiguration shape.
type functionConfiguration struct {
	FunctionName     string            `json:"FunctionName"`
	FunctionArn      string            `json:"FunctionArn"`
	Runtime          string            `json:"Runtime"`
	Role             string            `json:"Role"`
	Handler          string            `json:"Handler"`
	CodeSize         int64             `json:"CodeSize"`
	Description      string            `json:"Description"`
	Timeout          int               `json:"Timeout"`
	MemorySize       int               `json:"MemorySize"`
	LastModified     string            `json:"LastModified"`
	CodeSha256       string            `json:"CodeSha256"`
	Version          string            `json:"Version"`
	Environment      *environment      `json:"Environment,omitempty"`
	TracingConfig    map[string]string `json:"TracingConfig"`
	RevisionID       string            `json:"RevisionId"`
	State            string            `json:"State"`
	LastUpdateStatus string            `json:"LastUpdateStatus"`
	PackageType      string            `json:"PackageType"`
	Architectures    []string          `json:"Architectures"`
	EphemeralStorage ephemeralStorage  `json:"EphemeralStorage"`
	SnapStart        map[string]string `json:"SnapStart"`
	LoggingConfig    loggingConfig     `json:"LoggingConfig"`
	DeadLetterConfig *deadLetterConfig `json:"DeadLetterConfig,omitempty"`
	Layers           []functionLayer   `json:"Layers,omitempty"`
	VpcConfig        *vpcConfigOutput  `json:"VpcConfig,omitempty"`

	// icebox applies every change before it answers: a function is Active
	// and its last update Successful as soon as a call returns, so the
	// reasons Lambda gives for Pending, InProgress and Failed never arise,
	// and are omitted as Lambda omits them for an Active function.
	StateReason                string `json:"StateReason,omitempty"`
	StateReasonCode            string `json:"StateReasonCode,omitempty"`
	LastUpdateStatusReason     string `json:"LastUpdateStatusReason,omitempty"`
	LastUpdateStatusReasonCode string `json:"LastUpdateStatusReasonCode,omitempty"`
}

func (s *Server) configuration(fn model.Function) functionConfiguration {
	c := functionConfiguration{
		FunctionName:     fn.Name,
		FunctionArn:      fn.QualifiedARN(s.cfg.Region, s.cfg.AccountID),
		Runtime:          fn.Runtime,
		Role:             fn.Role,
		Handler:          fn.Handler,
		CodeSize:         fn.CodeSize,
		Description:      fn.Description,
		Timeout:          fn.Timeout,
		MemorySize:       fn.MemorySize,
		LastModified:     fn.LastModified.UTC().Format(lambdaTime),
		CodeSha256:       fn.CodeSha256,
		Version:          fn.VersionName(),
		TracingConfig:    map[string]string{"Mode": "PassThrough"},
		RevisionID:       fn.RevisionID,
		State:            "Active",
		LastUpdateStatus: "Successful",
		PackageType:      "Zip",
		Architectures:    fn.Architectures,
		EphemeralStorage: ephemeralStorage{Size: fn.EphemeralStorage},
		SnapStart:        map[string]string{"ApplyOn": "None", "OptimizationStatus": "Off"},
		LoggingConfig: loggingConfig{LogFormat: fn.Logging.Format(), LogGroup: fn.Logging.Group(fn.Name),
			ApplicationLogLevel: fn.Logging.ApplicationLevel(), SystemLogLevel: fn.Logging.SystemLevel()},
	}
	if len(fn.Environment) > 0 {
		c.Environment = &environment{Variables: fn.Environment}
	}
	if fn.DeadLetterTarget != "" {
		c.DeadLetterConfig = &deadLetterConfig{TargetArn: fn.DeadLetterTarget}
	}
	c.Layers = layersOut(fn.Layers)
	c.VpcConfig = vpcOut(fn.Vpc)
	return c
}

// codeZip takes the zip from a Code / UpdateFunctionCode input; only direct
// uploads exist here (there is no S3).
func codeZip(c functionCode) ([]byte, error) {
	if c.S3Bucket != nil || c.S3Key != nil || c.S3ObjectVersion != nil {
		return nil, fmt.Errorf("icebox has no S3: upload the code as ZipFile: %w", errdefs.ErrInvalid)
	}
	if c.ImageURI != nil {
		return nil, fmt.Errorf("container images are not supported: upload the code as ZipFile: %w", errdefs.ErrInvalid)
	}
	if c.SourceKMSKeyArn != nil && *c.SourceKMSKeyArn != "" {
		return nil, unsupported("SourceKMSKeyArn", "customer managed KMS keys: there is no KMS")
	}
	return c.ZipFile, nil
}

func (s *Server) createFunction(w http.ResponseWriter, r *http.Request) error {
	var in createFunctionInput
	if err := readJSON(r, &in); err != nil {
		return err
	}
	if in.PackageType != "" && in.PackageType != "Zip" {
		return fmt.Errorf("PackageType %s is not supported: only Zip: %w", in.PackageType, errdefs.ErrInvalid)
	}
	zip, err := codeZip(in.Code)
	if err != nil {
		return err
	}
	name, _, err := invoke.ParseFunctionRef(in.FunctionName, s.cfg.Region, s.cfg.AccountID)
	if err != nil {
		return err
	}
	if err := in.optionalConfig.check(); err != nil {
		return err
	}
	if err := in.createOnlyConfig.check(); err != nil {
		return err
	}
	fn := model.Function{Name: name, Runtime: in.Runtime, Role: in.Role, Handler: in.Handler, Description: in.Description,
		Architectures: in.Architectures, Tags: in.Tags}
	// Omitted fields take Lambda's defaults; given ones are checked as given,
	// so an explicit 0 is refused instead of being taken for "default".
	fn.ApplyDefaults()
	set(&fn.Timeout, in.Timeout)
	set(&fn.MemorySize, in.MemorySize)
	if in.Environment != nil {
		fn.Environment = in.Environment.Variables
	}
	if in.EphemeralStorage != nil {
		fn.EphemeralStorage = in.EphemeralStorage.Size
	}
	if in.DeadLetterConfig != nil {
		if err := s.allowTarget(r, "DeadLetterConfig.TargetArn", in.DeadLetterConfig.TargetArn); err != nil {
			return err
		}
		fn.DeadLetterTarget = in.DeadLetterConfig.TargetArn
	}
	if in.LoggingConfig != nil {
		fn.Logging = (*model.LoggingConfig)(nil).Merge(model.LoggingConfig(*in.LoggingConfig))
	}
	err = fn.Validate()
	if err == nil {
		err = s.authorizeLogGroup(r, fn)
	}
	if err == nil {
		err = s.authorizePassRole(r, fn.Role)
	}
	if err == nil && len(in.Layers) > 0 {
		fn.Layers, err = s.functionLayers(r, in.Layers)
	}
	if err == nil && in.VpcConfig != nil {
		fn.Vpc, err = s.vpc(r, in.VpcConfig)
	}
	if err == nil && len(fn.Tags) > 0 {
		err = s.authorizeOn(r, "lambda:TagResource", fn.Name, nil)
	}
	if err != nil {
		return err
	}
	created, err := s.functions.Create(r.Context(), fn, zip)
	if err == nil && in.Publish {
		// Lambda answers with the version it published.
		created, err = s.functions.Publish(r.Context(), created.Name, "", "", "")
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, s.configuration(created))
	return nil
}

// lookup is the function a path's {name} (and ?Qualifier=) refers to, as
// the pipeline resolved it: a view of the version or alias named.
func (s *Server) lookup(r *http.Request) (model.Function, error) {
	c, _ := r.Context().Value(callerKey{}).(caller)
	return c.target.fn, c.target.err
}

func (s *Server) getFunction(w http.ResponseWriter, r *http.Request) error {
	fn, err := s.lookup(r)
	if err != nil {
		return err
	}
	out := map[string]any{
		"Configuration": s.configuration(fn),
		"Code": map[string]string{
			"RepositoryType": "S3",
			"Location":       s.codeLocation(r, &fn),
		},
	}
	if s.mayListTags(r, fn) {
		out["Tags"] = tagsOf(fn)
	}
	// A qualified GetFunction leaves the function-wide reservation out, as
	// Lambda's does (tools read it with GetFunctionConcurrency).
	if fn.ReservedConcurrency != nil && fn.Qualifier == "" {
		out["Concurrency"] = concurrency{fn.ReservedConcurrency}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getFunctionConfiguration(w http.ResponseWriter, r *http.Request) error {
	fn, err := s.lookup(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.configuration(fn))
	return nil
}

// codeLocation is the URL GetFunction gives for downloading the code: like
// Lambda's presigned S3 URL, it works without a signature for 10 minutes.
func (s *Server) codeLocation(r *http.Request, fn *model.Function) string {
	q := url.Values{}
	if fn.Version != "" {
		q.Set("Qualifier", fn.Version)
	}
	if s.auth != nil {
		q.Set("token", s.auth.CodeToken(fn.Name, fn.CodeSha256, 10*time.Minute))
	}
	u := "http://" + r.Host + "/icebox/v1/functions/" + fn.Name + "/code"
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

func (s *Server) downloadCode(w http.ResponseWriter, r *http.Request) error {
	fn, err := s.lookup(r)
	if err != nil {
		return err
	}
	// An unsigned request (see public) must carry a valid token.
	if _, signed := callerOf(r); !signed && !s.cfg.NoAuth &&
		!s.auth.CheckCodeToken(fn.Name, fn.CodeSha256, r.URL.Query().Get("token")) {
		return &errdefs.AuthError{Kind: errdefs.AuthDenied, Message: "The code URL is invalid or has expired; call GetFunction for a new one."}
	}
	zip, err := s.functions.Code(r.Context(), &fn)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/zip")
	_, _ = w.Write(zip)
	return nil
}

func (s *Server) listFunctions(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit, err := maxItems(r)
	if err != nil {
		return err
	}
	all := false
	switch v := q.Get("FunctionVersion"); v {
	case "":
	case "ALL":
		all = true // every published version too
	default:
		return fmt.Errorf("1 validation error detected: Value '%s' at 'functionVersion' failed to satisfy constraint: Member must satisfy enum value set: [ALL]: %w", v, errdefs.ErrInvalid)
	}
	// The marker is the last name returned ("name:version" when listing
	// every version): names are unique and sorted, versions ascend, so the
	// listing stays consistent while functions and versions come and go.
	after := listPosition(q.Get("Marker"))
	out := []functionConfiguration{}
	next := ""
	for _, fn := range s.functions.List() {
		views := []model.Function{fn}
		if all {
			views[0].Qualifier = model.LatestVersion
			for _, v := range fn.Versions {
				view, _ := fn.View(v.Version)
				views = append(views, view)
			}
		}
		for _, v := range views {
			at := position{v.Name, versionOrder(v.Version)}
			if q.Get("Marker") != "" && !after.before(at) {
				continue
			}
			if len(out) == limit {
				next = out[len(out)-1].FunctionName
				if all {
					next += ":" + out[len(out)-1].Version
				}
				break
			}
			out = append(out, s.configuration(v))
		}
		if next != "" {
			break
		}
	}
	resp := map[string]any{"Functions": out}
	if next != "" {
		resp["NextMarker"] = next
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// position orders ListFunctions' items: by name, then $LATEST before the
// versions in ascending order.
type position struct {
	name    string
	version int // 0 for $LATEST
}

func (p position) before(q position) bool {
	return p.name < q.name || p.name == q.name && p.version < q.version
}

// listPosition is where a marker left off: after every version of a
// plain name's function, or after the version a "name:version" names.
func listPosition(marker string) position {
	name, v, ok := strings.Cut(marker, ":")
	if !ok {
		return position{marker, math.MaxInt}
	}
	return position{name, versionOrder(v)}
}

// versionOrder is a version's place among its function's: $LATEST ("" on
// a record) first.
func versionOrder(v string) int {
	n, _ := strconv.Atoi(v)
	return n
}

func (s *Server) deleteFunction(w http.ResponseWriter, r *http.Request) error {
	// A missing function or version is reported as Lambda does, by its ARN.
	fn, err := s.lookup(r)
	if err == nil {
		if fn.Qualifier == "" {
			err = s.functions.Delete(r.Context(), fn.Name)
		} else {
			err = s.functions.DeleteVersion(r.Context(), fn.Name, fn.Qualifier)
		}
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type updateCodeInput struct {
	functionCode
	RevisionID    string   `json:"RevisionId"`
	Publish       bool     `json:"Publish"`
	DryRun        bool     `json:"DryRun"`
	Architectures []string `json:"Architectures"`
	PublishTo     *string  `json:"PublishTo"`
}

func (s *Server) updateFunctionCode(w http.ResponseWriter, r *http.Request) error {
	var in updateCodeInput
	if err := readJSON(r, &in); err != nil {
		return err
	}
	fn, err := s.latest(r)
	if err != nil {
		return err
	}
	zip, err := codeZip(in.functionCode)
	if err == nil {
		err = checkArchitectures(in.Architectures)
	}
	if err == nil && in.PublishTo != nil && *in.PublishTo != "" {
		err = unsupported("PublishTo", "publishing to "+*in.PublishTo)
	}
	if err != nil {
		return err
	}
	if in.DryRun {
		// Validate everything the update would, change nothing, and answer
		// with the function as it stays.
		if in.RevisionID != "" && in.RevisionID != fn.RevisionID {
			return fmt.Errorf("The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id: %w", errdefs.ErrPreconditionFailed)
		}
		if err := s.functions.CheckCode(zip); err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, s.configuration(fn))
		return nil
	}
	updated, err := s.functions.UpdateCode(r.Context(), fn.Name, zip, in.RevisionID)
	if err == nil && in.Publish {
		updated, err = s.functions.Publish(r.Context(), fn.Name, updated.CodeSha256, updated.RevisionID, "")
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.configuration(updated))
	return nil
}

type updateConfigInput struct {
	Role             *string           `json:"Role"`
	Handler          *string           `json:"Handler"`
	Description      *string           `json:"Description"`
	Timeout          *int              `json:"Timeout"`
	MemorySize       *int              `json:"MemorySize"`
	Environment      *environment      `json:"Environment"`
	Runtime          *string           `json:"Runtime"`
	EphemeralStorage *ephemeralStorage `json:"EphemeralStorage"`
	RevisionID       string            `json:"RevisionId"`
	DeadLetterConfig *deadLetterConfig `json:"DeadLetterConfig"`
	LoggingConfig    *loggingConfig    `json:"LoggingConfig"`
	optionalConfig
}

func (s *Server) updateFunctionConfiguration(w http.ResponseWriter, r *http.Request) error {
	var in updateConfigInput
	if err := readJSON(r, &in); err != nil {
		return err
	}
	fn, err := s.latest(r)
	if err == nil {
		err = in.check()
	}
	if err == nil && in.DeadLetterConfig != nil {
		err = s.allowTarget(r, "DeadLetterConfig.TargetArn", in.DeadLetterConfig.TargetArn)
	}
	// Lambda asks for iam:PassRole whenever a Role is given, changed or not.
	if err == nil && in.Role != nil {
		err = s.authorizePassRole(r, *in.Role)
	}
	if err == nil && in.LoggingConfig != nil {
		// Checked here against the stored configuration, so a refusal
		// writes nothing.
		next := fn
		next.Logging = fn.Logging.Merge(model.LoggingConfig(*in.LoggingConfig))
		if err = next.Logging.Validate(); err == nil {
			err = s.authorizeLogGroup(r, next)
		}
	}
	// Layers given replace the function's; an empty list removes them.
	var layers []model.FunctionLayer
	if err == nil && in.Layers != nil {
		layers, err = s.functionLayers(r, in.Layers)
	}
	// VpcConfig given replaces the function's; one without subnets takes it
	// out of its networks.
	var vpc *model.VpcConfig
	if err == nil && in.VpcConfig != nil {
		vpc, err = s.vpc(r, in.VpcConfig)
	}
	if err != nil {
		return err
	}
	updated, err := s.functions.UpdateConfig(r.Context(), fn.Name, in.RevisionID, func(f *model.Function) {
		if in.LoggingConfig != nil {
			f.Logging = f.Logging.Merge(model.LoggingConfig(*in.LoggingConfig))
		}
		if in.DeadLetterConfig != nil {
			f.DeadLetterTarget = in.DeadLetterConfig.TargetArn
		}
		set(&f.Role, in.Role)
		set(&f.Handler, in.Handler)
		set(&f.Description, in.Description)
		set(&f.Timeout, in.Timeout)
		set(&f.MemorySize, in.MemorySize)
		set(&f.Runtime, in.Runtime)
		if in.Environment != nil {
			f.Environment = in.Environment.Variables
		}
		if in.EphemeralStorage != nil {
			f.EphemeralStorage = in.EphemeralStorage.Size
		}
		if in.Layers != nil {
			f.Layers = layers
		}
		if in.VpcConfig != nil {
			f.Vpc = vpc
		}
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.configuration(updated))
	return nil
}

// latest is the function a path names for an operation that changes
// $LATEST: published versions are immutable and aliases are not changed
// through them.
func (s *Server) latest(r *http.Request) (model.Function, error) {
	fn, err := s.lookup(r)
	if err == nil && fn.Qualifier != "" && fn.Qualifier != model.LatestVersion {
		err = fmt.Errorf("Published versions are immutable: %s cannot be changed, only $LATEST can: %w", fn.QualifiedARN(s.cfg.Region, s.cfg.AccountID), errdefs.ErrInvalid)
	}
	return fn, err
}

// record is the whole stored record (versions, aliases, URLs) of the
// function the path names unqualified or as $LATEST.
func (s *Server) record(r *http.Request) (model.Function, error) {
	fn, err := s.latest(r)
	if err != nil {
		return fn, err
	}
	return s.functions.Get(fn.Name)
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}
