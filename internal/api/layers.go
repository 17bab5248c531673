package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"

	"icebox/internal/errdefs"
	"icebox/internal/model"
	"icebox/internal/policy"
)

// Layers: the 2018-10-31 layer operations, and the Layers a function uses.
// A layer path's {layer} is a name or the layer's ARN, which must be of
// this account and region: icebox is one account, so a layer of another
// does not exist here.

const (
	layersPath        = "/2018-10-31/layers"
	layerVersionsPath = layersPath + "/{layer}/versions"
	layerVersionPath  = layerVersionsPath + "/{version}"
	// layerContentPath serves a layer version's zip: Content.Location.
	layerContentPath = "/icebox/v1/layers/{layer}/versions/{version}/content"
	// maxLayerListItems is ListLayers' and ListLayerVersions' MaxItems bound.
	maxLayerListItems = 50
)

var errLayerNotFound = fmt.Errorf("The resource you requested does not exist.: %w", errdefs.ErrNotFound)

// layerAction picks the action of GET /2018-10-31/layers, which is
// GetLayerVersionByArn with ?find=LayerVersion and ListLayers otherwise.
func layerAction(r *http.Request) string {
	if r.URL.Query().Get("find") == "LayerVersion" {
		return "lambda:GetLayerVersion"
	}
	return "lambda:ListLayers"
}

// layerName is the path's layer, as a bare name of this account's.
func (s *Server) layerName(r *http.Request) (string, error) {
	ref, err := model.ParseLayerName(r.PathValue("layer"))
	if err != nil {
		return "", err
	}
	if ref.Region != "" && (ref.Region != s.cfg.Region || ref.Account != s.cfg.AccountID) {
		return "", errLayerNotFound
	}
	return ref.Name, nil
}

// layerVersion is the path's layer and version number.
func (s *Server) layerVersion(r *http.Request) (string, int64, error) {
	name, err := s.layerName(r)
	if err != nil {
		return "", 0, err
	}
	v, err := strconv.ParseInt(r.PathValue("version"), 10, 64)
	if err != nil || v < 1 {
		return "", 0, validation(r.PathValue("version"), "versionNumber", "Member must be a number greater than or equal to 1")
	}
	return name, v, nil
}

// storedLayerVersion is the layer version the path names.
func (s *Server) storedLayerVersion(r *http.Request) (model.LayerVersion, error) {
	name, v, err := s.layerVersion(r)
	if err != nil {
		return model.LayerVersion{}, err
	}
	return s.functions.GetLayerVersion(r.Context(), name, v)
}

// layerResource is what a layer operation is authorized on: the version's
// ARN and its policy for operations on a version, the layer's ARN for
// PublishLayerVersion and ListLayerVersions, "*" for ListLayers (as in
// IAM's reference).
func (s *Server) layerResource(r *http.Request, action string) (string, *policy.Document) {
	var name string
	var version int64
	switch {
	case action == "lambda:ListLayers":
		return "*", nil
	case action == "lambda:PublishLayerVersion" || action == "lambda:ListLayerVersions":
		if n, err := s.layerName(r); err == nil {
			return model.LayerArn(s.cfg.Region, s.cfg.AccountID, n), nil
		}
		return "*", nil
	case r.PathValue("layer") == "": // GetLayerVersionByArn
		arn := r.URL.Query().Get("Arn")
		ref, v, err := model.ParseLayerVersionArn("arn", arn)
		if err != nil || ref.Region != s.cfg.Region || ref.Account != s.cfg.AccountID {
			return "*", nil
		}
		name, version = ref.Name, v
	default:
		n, v, err := s.layerVersion(r)
		if err != nil {
			return "*", nil
		}
		name, version = n, v
	}
	resource := model.LayerVersionArn(s.cfg.Region, s.cfg.AccountID, name, version)
	if action != "lambda:GetLayerVersion" {
		return resource, nil
	}
	// Only GetLayerVersion is granted by the layer's policy.
	lv, err := s.functions.GetLayerVersion(r.Context(), name, version)
	if err != nil {
		return resource, nil
	}
	return resource, lv.Policy
}

type layerVersionContent struct {
	Location   string `json:"Location,omitempty"`
	CodeSha256 string `json:"CodeSha256"`
	CodeSize   int64  `json:"CodeSize"`
}

// layerVersionOut is PublishLayerVersion's and GetLayerVersion's answer;
// without Content and LayerArn it is a LayerVersionsListItem.
type layerVersionOut struct {
	Content                 *layerVersionContent `json:"Content,omitempty"`
	LayerArn                string               `json:"LayerArn,omitempty"`
	LayerVersionArn         string               `json:"LayerVersionArn"`
	Description             string               `json:"Description"`
	CreatedDate             string               `json:"CreatedDate"`
	Version                 int64                `json:"Version"`
	CompatibleRuntimes      []string             `json:"CompatibleRuntimes,omitempty"`
	LicenseInfo             string               `json:"LicenseInfo,omitempty"`
	CompatibleArchitectures []string             `json:"CompatibleArchitectures,omitempty"`
}

func (s *Server) layerItem(lv model.LayerVersion) layerVersionOut {
	return layerVersionOut{
		LayerVersionArn:         model.LayerVersionArn(s.cfg.Region, s.cfg.AccountID, lv.Name, lv.Version),
		Description:             lv.Description,
		CreatedDate:             lv.Created.UTC().Format(lambdaTime),
		Version:                 lv.Version,
		CompatibleRuntimes:      lv.CompatibleRuntimes,
		LicenseInfo:             lv.LicenseInfo,
		CompatibleArchitectures: lv.CompatibleArchitectures,
	}
}

func (s *Server) layerVersionOut(r *http.Request, lv model.LayerVersion) layerVersionOut {
	out := s.layerItem(lv)
	out.LayerArn = model.LayerArn(s.cfg.Region, s.cfg.AccountID, lv.Name)
	out.Content = &layerVersionContent{CodeSha256: lv.CodeSha256, CodeSize: lv.CodeSize}
	// Like Lambda's presigned S3 URL: works without a signature for 10 minutes.
	out.Content.Location = fmt.Sprintf("http://%s/icebox/v1/layers/%s/versions/%d/content", r.Host, lv.Name, lv.Version)
	if s.auth != nil {
		out.Content.Location += "?token=" + s.auth.CodeToken(out.LayerVersionArn, lv.CodeSha256, 10*time.Minute)
	}
	return out
}

type publishLayerInput struct {
	Description             string       `json:"Description"`
	Content                 functionCode `json:"Content"`
	CompatibleRuntimes      []string     `json:"CompatibleRuntimes"`
	LicenseInfo             string       `json:"LicenseInfo"`
	CompatibleArchitectures []string     `json:"CompatibleArchitectures"`
}

func (s *Server) publishLayerVersion(w http.ResponseWriter, r *http.Request) error {
	var in publishLayerInput
	if err := readJSON(r, &in); err != nil {
		return err
	}
	name, err := s.layerName(r)
	if errors.Is(err, errdefs.ErrNotFound) {
		err = fmt.Errorf("layer %s is not of this account and region (%s, %s): %w", r.PathValue("layer"), s.cfg.AccountID, s.cfg.Region, errdefs.ErrInvalid)
	}
	if err != nil {
		return err
	}
	zip, err := codeZip(in.Content)
	if err != nil {
		return err
	}
	lv, err := s.functions.PublishLayerVersion(r.Context(), model.LayerVersion{Name: name, Description: in.Description,
		CompatibleRuntimes: in.CompatibleRuntimes, CompatibleArchitectures: in.CompatibleArchitectures, LicenseInfo: in.LicenseInfo}, zip)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, s.layerVersionOut(r, lv))
	return nil
}

func (s *Server) getLayerVersion(w http.ResponseWriter, r *http.Request) error {
	lv, err := s.storedLayerVersion(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.layerVersionOut(r, lv))
	return nil
}

// layers serves GET /2018-10-31/layers: GetLayerVersionByArn or ListLayers.
func (s *Server) layers(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if q.Get("find") != "LayerVersion" {
		return s.listLayers(w, r)
	}
	ref, v, err := model.ParseLayerVersionArn("arn", q.Get("Arn"))
	if err != nil {
		return err
	}
	if ref.Region != s.cfg.Region || ref.Account != s.cfg.AccountID {
		return errLayerNotFound
	}
	lv, err := s.functions.GetLayerVersion(r.Context(), ref.Name, v)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.layerVersionOut(r, lv))
	return nil
}

// layerFilter is ListLayers' and ListLayerVersions' query: the runtime and
// architecture a version must list, MaxItems and the Marker.
type layerFilter struct {
	runtime, arch, marker string
	max                   int
}

func readLayerFilter(r *http.Request) (layerFilter, error) {
	q := r.URL.Query()
	f := layerFilter{runtime: q.Get("CompatibleRuntime"), arch: q.Get("CompatibleArchitecture"), marker: q.Get("Marker"), max: maxLayerListItems}
	if v := q.Get("MaxItems"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLayerListItems {
			return f, validation(v, "maxItems", fmt.Sprintf("Member must have value between 1 and %d, inclusive", maxLayerListItems))
		}
		f.max = n
	}
	probe := model.LayerVersion{Name: "x"}
	if f.runtime != "" {
		probe.CompatibleRuntimes = []string{f.runtime}
	}
	if f.arch != "" {
		probe.CompatibleArchitectures = []string{f.arch}
	}
	if err := probe.Validate(); err != nil {
		return f, err
	}
	return f, nil
}

func (f layerFilter) matches(lv model.LayerVersion) bool {
	return (f.runtime == "" || slices.Contains(lv.CompatibleRuntimes, f.runtime)) &&
		(f.arch == "" || slices.Contains(lv.CompatibleArchitectures, f.arch))
}

func (s *Server) listLayers(w http.ResponseWriter, r *http.Request) error {
	f, err := readLayerFilter(r)
	if err != nil {
		return err
	}
	all, err := s.functions.ListLayerVersions(r.Context(), "")
	if err != nil {
		return err
	}
	type layerItem struct {
		LayerName             string          `json:"LayerName"`
		LayerArn              string          `json:"LayerArn"`
		LatestMatchingVersion layerVersionOut `json:"LatestMatchingVersion"`
	}
	// Versions come by name, newest first: the first match of a name is
	// its latest matching version. The marker is the last name returned.
	out := []layerItem{}
	resp := map[string]any{}
	for _, lv := range all {
		if !f.matches(lv) || lv.Name <= f.marker || (len(out) > 0 && out[len(out)-1].LayerName == lv.Name) {
			continue
		}
		if len(out) == f.max {
			resp["NextMarker"] = out[len(out)-1].LayerName
			break
		}
		out = append(out, layerItem{LayerName: lv.Name, LayerArn: model.LayerArn(s.cfg.Region, s.cfg.AccountID, lv.Name), LatestMatchingVersion: s.layerItem(lv)})
	}
	resp["Layers"] = out
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (s *Server) listLayerVersions(w http.ResponseWriter, r *http.Request) error {
	name, err := s.layerName(r)
	if err != nil {
		return err
	}
	f, err := readLayerFilter(r)
	if err != nil {
		return err
	}
	var below int64 // the marker is the last version returned
	if f.marker != "" {
		if below, err = strconv.ParseInt(f.marker, 10, 64); err != nil {
			return validation(f.marker, "marker", "Member must be a marker a previous ListLayerVersions returned")
		}
	}
	all, err := s.functions.ListLayerVersions(r.Context(), name)
	if err != nil {
		return err
	}
	out := []layerVersionOut{}
	resp := map[string]any{}
	for _, lv := range all {
		if !f.matches(lv) || (below > 0 && lv.Version >= below) {
			continue
		}
		if len(out) == f.max {
			resp["NextMarker"] = strconv.FormatInt(out[len(out)-1].Version, 10)
			break
		}
		out = append(out, s.layerItem(lv))
	}
	resp["LayerVersions"] = out
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (s *Server) deleteLayerVersion(w http.ResponseWriter, r *http.Request) error {
	name, v, err := s.layerVersion(r)
	if errors.Is(err, errdefs.ErrNotFound) {
		err = nil // another account's layer: nothing here to delete
	} else if err == nil {
		err = s.functions.DeleteLayerVersion(r.Context(), name, v)
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// layerContent serves a layer version's zip, to a signed caller allowed
// GetLayerVersion or to anyone with the token of its Content.Location.
func (s *Server) layerContent(w http.ResponseWriter, r *http.Request) error {
	lv, err := s.storedLayerVersion(r)
	if err != nil {
		return err
	}
	arn := model.LayerVersionArn(s.cfg.Region, s.cfg.AccountID, lv.Name, lv.Version)
	if _, signed := callerOf(r); !signed && !s.cfg.NoAuth && !s.auth.CheckCodeToken(arn, lv.CodeSha256, r.URL.Query().Get("token")) {
		return &errdefs.AuthError{Kind: errdefs.AuthDenied, Message: "The layer URL is invalid or has expired; call GetLayerVersion for a new one."}
	}
	zip, err := s.functions.LayerZip(r.Context(), lv)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/zip")
	_, _ = w.Write(zip)
	return nil
}

type layerPermissionInput struct {
	StatementID    string `json:"StatementId"`
	Action         string `json:"Action"`
	Principal      string `json:"Principal"`
	OrganizationID string `json:"OrganizationId"`
}

// Patterns of AddLayerVersionPermission, compiled on first use.
var (
	layerSidPattern       = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9-_]{1,100}$`) })
	layerPrincipalPattern = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^(\d{12}|\*|arn:(aws[a-zA-Z-]*):iam::\d{12}:root)$`)
	})
	orgIDPattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^o-[a-z0-9]{10,32}$`) })
)

// statement is the policy statement Lambda writes for the input: the
// principal an account's root or everyone, an organization as a condition.
func (in layerPermissionInput) statement(resource string) (policy.Statement, error) {
	switch {
	case !layerSidPattern().MatchString(in.StatementID):
		return policy.Statement{}, validation(in.StatementID, "statementId", "Member must satisfy regular expression pattern: ([a-zA-Z0-9-_]+)")
	case in.Action != "lambda:GetLayerVersion":
		return policy.Statement{}, validation(in.Action, "action", "Member must satisfy regular expression pattern: lambda:GetLayerVersion")
	case !layerPrincipalPattern().MatchString(in.Principal):
		return policy.Statement{}, validation(in.Principal, "principal", `Member must satisfy regular expression pattern: \d{12}|\*|arn:(aws[a-zA-Z-]*):iam::\d{12}:root`)
	case in.OrganizationID != "" && !orgIDPattern().MatchString(in.OrganizationID):
		return policy.Statement{}, validation(in.OrganizationID, "organizationId", "Member must satisfy regular expression pattern: o-[a-z0-9]{10,32}")
	case in.OrganizationID != "" && in.Principal != "*":
		return policy.Statement{}, fmt.Errorf("OrganizationId may be given only with Principal \"*\".: %w", errdefs.ErrInvalid)
	}
	p := &policy.Principal{}
	switch {
	case in.Principal == "*":
		p.Any = true
	case accountID().MatchString(in.Principal):
		p.AWS = policy.Values{"arn:aws:iam::" + in.Principal + ":root"}
	default:
		p.AWS = policy.Values{in.Principal}
	}
	st := policy.Statement{Sid: in.StatementID, Effect: policy.Allow, Principal: p, Action: policy.Values{in.Action}, Resource: policy.Values{resource}}
	if in.OrganizationID != "" {
		st.Condition = map[string]map[string]policy.Values{"StringEquals": {"aws:PrincipalOrgID": {in.OrganizationID}}}
	}
	return st, nil
}

func (s *Server) addLayerVersionPermission(w http.ResponseWriter, r *http.Request) error {
	var in layerPermissionInput
	if err := readJSON(r, &in); err != nil {
		return err
	}
	name, v, err := s.layerVersion(r)
	if err != nil {
		return err
	}
	st, err := in.statement(model.LayerVersionArn(s.cfg.Region, s.cfg.AccountID, name, v))
	if err != nil {
		return err
	}
	lv, err := s.functions.AddLayerVersionPermission(r.Context(), name, v, r.URL.Query().Get("RevisionId"), st)
	if err != nil {
		return err
	}
	b, _ := json.Marshal(st)
	writeJSON(w, http.StatusCreated, map[string]string{"Statement": string(b), "RevisionId": lv.RevisionID})
	return nil
}

func (s *Server) getLayerVersionPolicy(w http.ResponseWriter, r *http.Request) error {
	lv, err := s.storedLayerVersion(r)
	if err != nil {
		return err
	}
	if lv.Policy == nil {
		return fmt.Errorf("No policy is associated with the given resource.: %w", errdefs.ErrNotFound)
	}
	b, _ := json.Marshal(lv.Policy)
	writeJSON(w, http.StatusOK, map[string]string{"Policy": string(b), "RevisionId": lv.RevisionID})
	return nil
}

func (s *Server) removeLayerVersionPermission(w http.ResponseWriter, r *http.Request) error {
	name, v, err := s.layerVersion(r)
	if err != nil {
		return err
	}
	if err := s.functions.RemoveLayerVersionPermission(r.Context(), name, v, r.PathValue("sid"), r.URL.Query().Get("RevisionId")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// functionLayers resolves a function's Layers: at most five layer version
// ARNs of this account and region, one version per layer, each existing
// and usable by the caller (lambda:GetLayerVersion, from its identity
// policies or the version's own policy), as Lambda checks them.
func (s *Server) functionLayers(r *http.Request, arns []string) ([]model.FunctionLayer, error) {
	if len(arns) > model.MaxFunctionLayers {
		return nil, fmt.Errorf("Cannot reference more than %d layers.: %w", model.MaxFunctionLayers, errdefs.ErrInvalid)
	}
	out := make([]model.FunctionLayer, 0, len(arns))
	seen := map[string]string{}
	for _, arn := range arns {
		ref, v, err := model.ParseLayerVersionArn("layers", arn)
		if err != nil {
			return nil, err
		}
		if other, dup := seen[ref.Name]; dup {
			return nil, fmt.Errorf("Two different versions of the same layer are not allowed to be referenced in the same function. %s and %s: %w", other, arn, errdefs.ErrInvalid)
		}
		seen[ref.Name] = arn
		notExist := fmt.Errorf("Layer version %s does not exist.: %w", arn, errdefs.ErrInvalid)
		if ref.Region != s.cfg.Region || ref.Account != s.cfg.AccountID {
			return nil, notExist
		}
		lv, err := s.functions.GetLayerVersion(r.Context(), ref.Name, v)
		if errors.Is(err, errdefs.ErrNotFound) {
			return nil, notExist
		}
		if err != nil {
			return nil, err
		}
		if c, ok := callerOf(r); ok && !c.id.Root {
			if err := s.decide(c.id, "lambda:GetLayerVersion", arn, lv.Policy); err != nil {
				return nil, err
			}
		}
		out = append(out, model.FunctionLayer{Arn: arn, CodeSha256: lv.CodeSha256, CodeSize: lv.CodeSize, UnzippedSize: lv.UnzippedSize})
	}
	return out, nil
}

// functionLayer is a Layers item of FunctionConfiguration.
type functionLayer struct {
	Arn      string `json:"Arn"`
	CodeSize int64  `json:"CodeSize"`
}

func layersOut(ls []model.FunctionLayer) []functionLayer {
	var out []functionLayer
	for _, l := range ls {
		out = append(out, functionLayer{Arn: l.Arn, CodeSize: l.CodeSize})
	}
	return out
}
