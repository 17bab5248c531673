package api

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"icebox/internal/errdefs"
	"icebox/internal/model"
)

// Versions (PublishVersion, ListVersionsByFunction) and aliases
// (Create/Get/Update/Delete/ListAliases). Qualifiers are resolved in one
// place, model.Function.View, which every qualified operation reaches
// through the pipeline's lookup.

type publishVersionInput struct {
	CodeSha256  string `json:"CodeSha256"`
	Description string `json:"Description"`
	RevisionID  string `json:"RevisionId"`
}

func (s *Server) publishVersion(w http.ResponseWriter, r *http.Request) error {
	var in publishVersionInput
	if err := readJSON(r, &in); err != nil {
		return err
	}
	if len(in.Description) > 256 {
		return fmt.Errorf("1 validation error detected: Value at 'description' failed to satisfy constraint: Member must have length less than or equal to 256: %w", errdefs.ErrInvalid)
	}
	fn, err := s.latest(r)
	if err != nil {
		return err
	}
	v, err := s.functions.Publish(r.Context(), fn.Name, in.CodeSha256, in.RevisionID, in.Description)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, s.configuration(v))
	return nil
}

// maxItems reads a MaxItems parameter (1–10000, default 50).
func maxItems(r *http.Request) (int, error) {
	v := r.URL.Query().Get("MaxItems")
	if v == "" {
		return 50, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 10000 {
		return 0, fmt.Errorf("1 validation error detected: Value '%s' at 'maxItems' failed to satisfy constraint: Member must have value between 1 and 10000, inclusive: %w", v, errdefs.ErrInvalid)
	}
	return n, nil
}

// page returns the items after marker (the key of the last item of the
// previous page), at most limit of them, and the marker of the next page.
func page[T any](items []T, key func(T) string, marker string, limit int) ([]T, *string) {
	if marker != "" {
		i := slices.IndexFunc(items, func(it T) bool { return key(it) == marker })
		items = items[i+1:] // a marker no longer there starts over, as -1+1
	}
	if len(items) <= limit {
		return items, nil
	}
	next := key(items[limit-1])
	return items[:limit], &next
}

// listVersionsByFunction lists $LATEST, then the published versions in
// order.
func (s *Server) listVersionsByFunction(w http.ResponseWriter, r *http.Request) error {
	limit, err := maxItems(r)
	if err != nil {
		return err
	}
	rec, err := s.record(r)
	if err != nil {
		return err
	}
	all := []model.Function{rec}
	for _, v := range rec.Versions {
		view, _ := rec.View(v.Version)
		all = append(all, view)
	}
	items, next := page(all, func(f model.Function) string { return f.VersionName() }, r.URL.Query().Get("Marker"), limit)
	out := make([]functionConfiguration, len(items))
	for i, f := range items {
		out[i] = s.configuration(f)
	}
	writeJSON(w, http.StatusOK, map[string]any{"Versions": out, "NextMarker": next})
	return nil
}

type routingConfig struct {
	AdditionalVersionWeights map[string]float64 `json:"AdditionalVersionWeights,omitempty"`
}

type aliasInput struct {
	Name            string         `json:"Name"`
	FunctionVersion *string        `json:"FunctionVersion"`
	Description     *string        `json:"Description"`
	RoutingConfig   *routingConfig `json:"RoutingConfig"`
	RevisionID      string         `json:"RevisionId"`
}

type aliasConfiguration struct {
	AliasArn        string         `json:"AliasArn"`
	Name            string         `json:"Name"`
	FunctionVersion string         `json:"FunctionVersion"`
	Description     string         `json:"Description"`
	RoutingConfig   *routingConfig `json:"RoutingConfig,omitempty"`
	RevisionID      string         `json:"RevisionId"`
}

func (s *Server) aliasConfiguration(name string, a model.Alias) aliasConfiguration {
	c := aliasConfiguration{AliasArn: model.ARN(s.cfg.Region, s.cfg.AccountID, name) + ":" + a.Name, Name: a.Name,
		FunctionVersion: a.FunctionVersion, Description: a.Description, RevisionID: a.RevisionID}
	if len(a.Weights) > 0 {
		c.RoutingConfig = &routingConfig{AdditionalVersionWeights: a.Weights}
	}
	return c
}

func (s *Server) createAlias(w http.ResponseWriter, r *http.Request) error {
	var in aliasInput
	if err := readJSON(r, &in); err != nil {
		return err
	}
	fn, err := s.latest(r)
	if err != nil {
		return err
	}
	if in.FunctionVersion == nil {
		return validation("null", "functionVersion", "Member must not be null")
	}
	a := model.Alias{Name: in.Name, FunctionVersion: *in.FunctionVersion, Description: deref(in.Description)}
	if in.RoutingConfig != nil {
		a.Weights = in.RoutingConfig.AdditionalVersionWeights
	}
	created, err := s.functions.CreateAlias(r.Context(), fn.Name, a)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, s.aliasConfiguration(fn.Name, created))
	return nil
}

// alias is the alias a path's {alias} names on the function {name}.
func (s *Server) alias(r *http.Request) (model.Function, model.Alias, error) {
	rec, err := s.record(r)
	if err != nil {
		return rec, model.Alias{}, err
	}
	name := r.PathValue("alias")
	if a := rec.AliasNamed(name); a != nil {
		return rec, *a, nil
	}
	if err := model.ValidateAliasName(name); err != nil {
		return rec, model.Alias{}, err
	}
	return rec, model.Alias{}, fmt.Errorf("Alias not found: %s:%s: %w", model.ARN(s.cfg.Region, s.cfg.AccountID, rec.Name), name, errdefs.ErrNotFound)
}

func (s *Server) getAlias(w http.ResponseWriter, r *http.Request) error {
	fn, a, err := s.alias(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.aliasConfiguration(fn.Name, a))
	return nil
}

func (s *Server) updateAlias(w http.ResponseWriter, r *http.Request) error {
	var in aliasInput
	if err := readJSON(r, &in); err != nil {
		return err
	}
	fn, a, err := s.alias(r)
	if err != nil {
		return err
	}
	updated, err := s.functions.UpdateAlias(r.Context(), fn.Name, a.Name, in.RevisionID, func(a *model.Alias) {
		set(&a.FunctionVersion, in.FunctionVersion)
		set(&a.Description, in.Description)
		if in.RoutingConfig != nil {
			a.Weights = in.RoutingConfig.AdditionalVersionWeights
		}
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.aliasConfiguration(fn.Name, updated))
	return nil
}

func (s *Server) deleteAlias(w http.ResponseWriter, r *http.Request) error {
	fn, err := s.latest(r)
	if err != nil {
		return err
	}
	name := r.PathValue("alias")
	if err := model.ValidateAliasName(name); err != nil {
		return err
	}
	if err := s.functions.DeleteAlias(r.Context(), fn.Name, name); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// listAliases lists a function's aliases by name, those routing to
// FunctionVersion only when it is given.
func (s *Server) listAliases(w http.ResponseWriter, r *http.Request) error {
	limit, err := maxItems(r)
	if err != nil {
		return err
	}
	rec, err := s.record(r)
	if err != nil {
		return err
	}
	aliases := slices.Clone(rec.Aliases)
	if v := r.URL.Query().Get("FunctionVersion"); v != "" {
		routed := rec.AliasesOf(v)
		aliases = slices.DeleteFunc(aliases, func(a model.Alias) bool { return !slices.Contains(routed, a.Name) })
	}
	slices.SortFunc(aliases, func(a, b model.Alias) int { return strings.Compare(a.Name, b.Name) })
	items, next := page(aliases, func(a model.Alias) string { return a.Name }, r.URL.Query().Get("Marker"), limit)
	out := make([]aliasConfiguration, len(items))
	for i, a := range items {
		out[i] = s.aliasConfiguration(rec.Name, a)
	}
	writeJSON(w, http.StatusOK, map[string]any{"Aliases": out, "NextMarker": next})
	return nil
}
