package api

import (
	"fmt"
	"net/http"

	"icebox/internal/admission"
	"icebox/internal/errdefs"
	"icebox/internal/model"
)

// Account reports the account's concurrency limits and usage.
type Account interface {
	Limits() admission.Config
	Usage() admission.Usage
}

// Lambda's fixed code-size quotas, as GetAccountSettings reports them.
const totalCodeSizeLimit = 80530636800

type concurrency struct {
	ReservedConcurrentExecutions *int `json:"ReservedConcurrentExecutions,omitempty"`
}

func (s *Server) putFunctionConcurrency(w http.ResponseWriter, r *http.Request) error {
	var in concurrency
	if err := readJSON(r, &in); err != nil {
		return err
	}
	if in.ReservedConcurrentExecutions == nil {
		return fmt.Errorf("1 validation error detected: Value null at 'reservedConcurrentExecutions' failed to satisfy constraint: Member must not be null: %w", errdefs.ErrInvalid)
	}
	fn, err := s.lookup(r)
	if err != nil {
		return err
	}
	updated, err := s.functions.PutConcurrency(r.Context(), fn.Name, *in.ReservedConcurrentExecutions)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, concurrency{updated.ReservedConcurrency})
	return nil
}

func (s *Server) getFunctionConcurrency(w http.ResponseWriter, r *http.Request) error {
	fn, err := s.lookup(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, concurrency{fn.ReservedConcurrency})
	return nil
}

func (s *Server) deleteFunctionConcurrency(w http.ResponseWriter, r *http.Request) error {
	fn, err := s.lookup(r)
	if err == nil {
		err = s.functions.DeleteConcurrency(r.Context(), fn.Name)
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) getAccountSettings(w http.ResponseWriter, r *http.Request) error {
	lim, use := s.account.Limits(), s.account.Usage()
	var total int64
	fns := s.functions.List()
	for _, f := range fns {
		total += f.CodeSize
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"AccountLimit": map[string]int64{
			"TotalCodeSize":                  totalCodeSizeLimit,
			"CodeSizeUnzipped":               model.MaxUnzippedBytes,
			"CodeSizeZipped":                 model.MaxZipBytes,
			"ConcurrentExecutions":           int64(lim.AccountLimit),
			"UnreservedConcurrentExecutions": int64(use.UnreservedLimit),
		},
		"AccountUsage": map[string]int64{
			"TotalCodeSize": total,
			"FunctionCount": int64(len(fns)),
		},
	})
	return nil
}
