package api

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"icebox/internal/errdefs"
	"icebox/internal/functions"
	"icebox/internal/invoke"
	"icebox/internal/model"
)

// Function URL configuration: Create/Get/Update/Delete/ListFunctionUrlConfig(s)
// on /2021-10-31/functions/{name}/url(s). A URL belongs to the function
// and a qualifier (an alias, or none for $LATEST); its address is served
// by the URL listener (urlserver.go).

const urlPath = "/2021-10-31/functions/{name}/url"

// urlTime is how Lambda writes a function URL's CreationTime and
// LastModifiedTime (ISO 8601 with microseconds).
const urlTime = "2006-01-02T15:04:05.000000Z"

// urlQualifierPattern is Lambda's pattern for a URL's Qualifier: $LATEST
// or an alias name, never a version number.
var urlQualifierPattern = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^(\$LATEST|[a-zA-Z0-9-_]*[a-zA-Z-_][a-zA-Z0-9-_]*)$`)
})

// functionURLConfig is Lambda's FunctionUrlConfig (and the Create/Update
// outputs, which are the same fields).
type functionURLConfig struct {
	FunctionURL      string         `json:"FunctionUrl"`
	FunctionArn      string         `json:"FunctionArn"`
	AuthType         string         `json:"AuthType"`
	Cors             *model.URLCors `json:"Cors,omitempty"`
	CreationTime     string         `json:"CreationTime"`
	LastModifiedTime string         `json:"LastModifiedTime,omitempty"`
	InvokeMode       string         `json:"InvokeMode"`
}

// urlInput is Create/UpdateFunctionUrlConfig's body; unset fields keep
// their value on update.
type urlInput struct {
	AuthType   *string        `json:"AuthType"`
	Cors       *model.URLCors `json:"Cors"`
	InvokeMode *string        `json:"InvokeMode"`
}

// urlAddress is the address a function URL is served at.
func (s *Server) urlAddress(id string) string {
	return fmt.Sprintf("http://%s.%s:%d/", id, s.urlDomain(), s.cfg.URLPort)
}

// urlDomain is what follows a URL id in its host name.
func (s *Server) urlDomain() string { return "lambda-url." + s.cfg.Region + ".localhost" }

func (s *Server) urlConfig(fn model.Function, u model.FunctionURL, modified bool) functionURLConfig {
	arn := model.ARN(s.cfg.Region, s.cfg.AccountID, fn.Name)
	if u.Qualifier != "" {
		arn += ":" + u.Qualifier
	}
	c := functionURLConfig{FunctionURL: s.urlAddress(u.ID), FunctionArn: arn, AuthType: u.AuthType, Cors: u.Cors,
		CreationTime: u.CreationTime.UTC().Format(urlTime), InvokeMode: u.InvokeMode}
	if modified {
		c.LastModifiedTime = u.LastModifiedTime.UTC().Format(urlTime)
	}
	return c
}

// urlTarget is the function a URL call names and its qualifier ("" for
// $LATEST); the function (or alias) must exist.
func (s *Server) urlTarget(r *http.Request) (model.Function, string, error) {
	q := r.URL.Query().Get("Qualifier")
	if q == "" {
		// The alias may come with the name ("f:live", or an alias ARN).
		_, q, _ = invoke.ParseFunctionRef(r.PathValue("name"), s.cfg.Region, s.cfg.AccountID)
	}
	if q != "" && !urlQualifierPattern().MatchString(q) {
		return model.Function{}, "", fmt.Errorf("1 validation error detected: Value '%s' at 'qualifier' failed to satisfy constraint: Member must satisfy regular expression pattern: ((?!^\\d+$)^[0-9a-zA-Z-_]+$): %w", q, errdefs.ErrInvalid)
	}
	if q == model.LatestVersion {
		q = ""
	}
	fn, err := s.lookup(r)
	if err != nil {
		return fn, q, err
	}
	// URLs live on the function's own record, whichever alias names it.
	fn, err = s.functions.Get(fn.Name)
	return fn, q, err
}

func (s *Server) createFunctionURLConfig(w http.ResponseWriter, r *http.Request) error {
	var in urlInput
	if err := readJSON(r, &in); err != nil {
		return err
	}
	fn, q, err := s.urlTarget(r)
	if err != nil {
		return err
	}
	if in.AuthType == nil {
		return fmt.Errorf("1 validation error detected: Value null at 'authType' failed to satisfy constraint: Member must not be null: %w", errdefs.ErrInvalid)
	}
	now := time.Now().UTC()
	u := model.FunctionURL{ID: model.NewURLID(), Qualifier: q, AuthType: *in.AuthType, InvokeMode: model.InvokeBuffered,
		Cors: in.Cors, CreationTime: now, LastModifiedTime: now}
	if in.InvokeMode != nil {
		u.InvokeMode = *in.InvokeMode
	}
	if u, err = s.functions.CreateURL(r.Context(), fn.Name, u); errors.Is(err, functions.ErrURLExists) {
		// Lambda's message, naming the URL's (qualified) function ARN.
		return fmt.Errorf("Failed to create function url config for [functionArn = %s]. Error message:  %w", s.urlConfig(fn, u, false).FunctionArn, err)
	} else if err != nil {
		return err
	}
	s.indexURL(u.ID, fn.Name)
	writeJSON(w, http.StatusCreated, s.urlConfig(fn, u, false))
	return nil
}

func (s *Server) getFunctionURLConfig(w http.ResponseWriter, r *http.Request) error {
	fn, q, err := s.urlTarget(r)
	if err != nil {
		return err
	}
	u, ok := fn.URLOf(q)
	if !ok {
		return functions.ErrNoURL
	}
	writeJSON(w, http.StatusOK, s.urlConfig(fn, u, true))
	return nil
}

func (s *Server) updateFunctionURLConfig(w http.ResponseWriter, r *http.Request) error {
	var in urlInput
	if err := readJSON(r, &in); err != nil {
		return err
	}
	fn, q, err := s.urlTarget(r)
	if err != nil {
		return err
	}
	u, err := s.functions.UpdateURL(r.Context(), fn.Name, q, func(u *model.FunctionURL) {
		if in.AuthType != nil {
			u.AuthType = *in.AuthType
		}
		if in.InvokeMode != nil {
			u.InvokeMode = *in.InvokeMode
		}
		if in.Cors != nil {
			u.Cors = in.Cors
		}
		u.LastModifiedTime = time.Now().UTC()
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.urlConfig(fn, u, true))
	return nil
}

func (s *Server) deleteFunctionURLConfig(w http.ResponseWriter, r *http.Request) error {
	fn, q, err := s.urlTarget(r)
	if err != nil {
		return err
	}
	if err := s.functions.DeleteURL(r.Context(), fn.Name, q); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listFunctionURLConfigs(w http.ResponseWriter, r *http.Request) error {
	fn, err := s.lookup(r)
	if err == nil {
		fn, err = s.functions.Get(fn.Name)
	}
	if err != nil {
		return err
	}
	maxItems := 50
	if v := r.URL.Query().Get("MaxItems"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 50 {
			return fmt.Errorf("1 validation error detected: Value '%s' at 'maxItems' failed to satisfy constraint: Member must have value between 1 and 50, inclusive: %w", v, errdefs.ErrInvalid)
		}
		maxItems = n
	}
	// The marker is the last id returned: ids are unique, listed in order.
	marker := r.URL.Query().Get("Marker")
	urls := slices.SortedFunc(slices.Values(fn.URLs), func(a, b model.FunctionURL) int { return strings.Compare(a.ID, b.ID) })
	out := []functionURLConfig{}
	resp := map[string]any{}
	last := ""
	for _, u := range urls {
		if marker != "" && u.ID <= marker {
			continue
		}
		if len(out) == maxItems {
			resp["NextMarker"] = last
			break
		}
		out = append(out, s.urlConfig(fn, u, true))
		last = u.ID
	}
	resp["FunctionUrlConfigs"] = out
	writeJSON(w, http.StatusOK, resp)
	return nil
}
