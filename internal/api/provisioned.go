package api

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"

	"icebox/internal/errdefs"
	"icebox/internal/model"
)

// Provisioned concurrency configurations: stored on the function per
// version or alias; the pool keeps the environments and reports how many
// are initialized (SetProvisionedStatus).

// ProvisionedStatus reports how many environments of a version are
// initialized for provisioned concurrency, and why provisioning stopped
// ("" while it goes on).
type ProvisionedStatus func(fn *model.Function) (allocated int, failure string)

// SetProvisionedStatus tells the API how far provisioning has got.
func (s *Server) SetProvisionedStatus(f ProvisionedStatus) { s.provisioned = f }

// provisionedConcurrencyAction: GetProvisionedConcurrencyConfig and
// ListProvisionedConcurrencyConfigs share one path; List=ALL tells them
// apart.
func provisionedConcurrencyAction(r *http.Request) string {
	if r.URL.Query().Get("List") == "ALL" {
		return "lambda:ListProvisionedConcurrencyConfigs"
	}
	return "lambda:GetProvisionedConcurrencyConfig"
}

// errNoProvisionedConcurrency is Lambda's own 404 for a function or
// qualifier without provisioned concurrency
// (ProvisionedConcurrencyConfigNotFoundException).
var errNoProvisionedConcurrency = errors.New("No Provisioned Concurrency Config found for this function")

type provisionedConfig struct {
	FunctionArn string `json:"FunctionArn,omitempty"` // in lists only
	Requested   int    `json:"RequestedProvisionedConcurrentExecutions"`
	Available   int    `json:"AvailableProvisionedConcurrentExecutions"`
	Allocated   int    `json:"AllocatedProvisionedConcurrentExecutions"`
	// Status is IN_PROGRESS until every environment asked for is
	// initialized, then READY; FAILED when an init failed.
	Status       string `json:"Status"`
	StatusReason string `json:"StatusReason,omitempty"`
	LastModified string `json:"LastModified"`
}

// provisionedOutput describes rec's configuration pc with the pool's
// progress on the version it runs.
func (s *Server) provisionedOutput(rec model.Function, pc model.ProvisionedConfig) provisionedConfig {
	out := provisionedConfig{Requested: pc.Requested, Status: "IN_PROGRESS", LastModified: pc.LastModified.UTC().Format(lambdaTime)}
	if s.provisioned == nil {
		return out
	}
	var failure string
	for _, p := range rec.Provisions(pc) {
		allocated, failed := s.provisioned(&p.View)
		out.Allocated += min(allocated, p.Count)
		failure = cmp.Or(failure, failed)
	}
	out.Available = out.Allocated
	switch {
	case failure != "":
		out.Status, out.StatusReason = "FAILED", failure
	case out.Available == pc.Requested:
		out.Status = "READY"
	}
	return out
}

// provisionedQualifier is the version or alias a provisioned concurrency
// call names, checked as Lambda checks it.
func (s *Server) provisionedQualifier(r *http.Request) (model.Function, string, error) {
	fn, err := s.lookup(r)
	if err != nil {
		return fn, "", err
	}
	q := fn.Qualifier
	if q == "" {
		return fn, "", validation("null", "qualifier", "Member must not be null")
	}
	if q == model.LatestVersion {
		return fn, "", fmt.Errorf("Provisioned Concurrency Configs cannot be applied to unpublished function versions.: %w", errdefs.ErrInvalid)
	}
	rec, err := s.functions.Get(fn.Name)
	return rec, q, err
}

func (s *Server) putProvisionedConcurrencyConfig(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		N *int `json:"ProvisionedConcurrentExecutions"`
	}
	if err := readJSON(r, &in); err != nil {
		return err
	}
	if in.N == nil {
		return validation("null", "provisionedConcurrentExecutions", "Member must not be null")
	}
	rec, q, err := s.provisionedQualifier(r)
	if err != nil {
		return err
	}
	pc, err := s.functions.PutProvisioned(r.Context(), rec.Name, q, *in.N)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, s.provisionedOutput(rec, pc))
	return nil
}

func (s *Server) deleteProvisionedConcurrencyConfig(w http.ResponseWriter, r *http.Request) error {
	rec, q, err := s.provisionedQualifier(r)
	if err != nil {
		return err
	}
	if rec.ProvisionedFor(q) == nil {
		return errNoProvisionedConcurrency
	}
	if err := s.functions.DeleteProvisioned(r.Context(), rec.Name, q); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// provisionedConcurrencyConfigs serves Get (?Qualifier=) and List
// (?List=ALL) on their shared path.
func (s *Server) provisionedConcurrencyConfigs(w http.ResponseWriter, r *http.Request) error {
	if provisionedConcurrencyAction(r) == "lambda:GetProvisionedConcurrencyConfig" {
		rec, q, err := s.provisionedQualifier(r)
		if err != nil {
			return err
		}
		pc := rec.ProvisionedFor(q)
		if pc == nil {
			return errNoProvisionedConcurrency
		}
		writeJSON(w, http.StatusOK, s.provisionedOutput(rec, *pc))
		return nil
	}
	fn, err := s.record(r)
	if err != nil {
		return err
	}
	out := []provisionedConfig{}
	for _, pc := range fn.Provisioned {
		c := s.provisionedOutput(fn, pc)
		c.FunctionArn = model.ARN(s.cfg.Region, s.cfg.AccountID, fn.Name) + ":" + pc.Qualifier
		out = append(out, c)
	}
	writeJSON(w, http.StatusOK, map[string]any{"ProvisionedConcurrencyConfigs": out})
	return nil
}
