package api

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"icebox/internal/errdefs"
	"icebox/internal/invoke"
	"icebox/internal/model"
)

type destination struct {
	Destination string `json:"Destination,omitempty"`
}

type destinationConfig struct {
	OnSuccess *destination `json:"OnSuccess,omitempty"`
	OnFailure *destination `json:"OnFailure,omitempty"`
}

type eventInvokeConfigInput struct {
	MaximumRetryAttempts     *int               `json:"MaximumRetryAttempts"`
	MaximumEventAgeInSeconds *int               `json:"MaximumEventAgeInSeconds"`
	DestinationConfig        *destinationConfig `json:"DestinationConfig"`
}

type eventInvokeConfigOutput struct {
	LastModified             float64           `json:"LastModified"`
	FunctionArn              string            `json:"FunctionArn"`
	MaximumRetryAttempts     *int              `json:"MaximumRetryAttempts,omitempty"`
	MaximumEventAgeInSeconds *int              `json:"MaximumEventAgeInSeconds,omitempty"`
	DestinationConfig        destinationConfig `json:"DestinationConfig"`
}

// checkTarget accepts the destinations icebox can deliver to: functions of
// this account and region.
func (s *Server) checkTarget(field, arn string) error {
	if arn == "" {
		return nil
	}
	if !strings.HasPrefix(arn, "arn:") || !strings.Contains(arn, ":lambda:") {
		return fmt.Errorf("%s %s is not supported: icebox delivers only to Lambda functions (arn:aws:lambda:%s:%s:function:NAME); SQS, SNS, EventBridge and S3 targets are not available: %w",
			field, arn, s.cfg.Region, s.cfg.AccountID, errdefs.ErrInvalid)
	}
	if _, _, err := invoke.ParseFunctionRef(arn, s.cfg.Region, s.cfg.AccountID); err != nil {
		if errors.Is(err, errdefs.ErrNotFound) {
			return fmt.Errorf("%s %s is not a function of this account and region (%s, %s): %w", field, arn, s.cfg.AccountID, s.cfg.Region, errdefs.ErrInvalid)
		}
		return err
	}
	return nil
}

func (s *Server) eventInvokeOutput(fn model.Function) eventInvokeConfigOutput {
	c := fn.EventInvoke
	out := eventInvokeConfigOutput{
		LastModified:             float64(c.LastModified.UnixMilli()) / 1000,
		FunctionArn:              model.ARN(s.cfg.Region, s.cfg.AccountID, fn.Name) + ":" + cmp.Or(fn.Qualifier, model.LatestVersion),
		MaximumRetryAttempts:     c.MaximumRetryAttempts,
		MaximumEventAgeInSeconds: c.MaximumEventAgeInSeconds,
	}
	if c.OnSuccess != "" {
		out.DestinationConfig.OnSuccess = &destination{c.OnSuccess}
	}
	if c.OnFailure != "" {
		out.DestinationConfig.OnFailure = &destination{c.OnFailure}
	}
	return out
}

// putEventInvokeConfig serves Put (replace, PUT) and Update (merge, POST).
func (s *Server) putEventInvokeConfig(w http.ResponseWriter, r *http.Request) error {
	var in eventInvokeConfigInput
	if err := readJSON(r, &in); err != nil {
		return err
	}
	fn, err := s.lookup(r)
	if err != nil {
		return err
	}
	merge := r.Method == http.MethodPost
	if merge && fn.EventInvoke == nil {
		return s.noEventInvokeConfig(fn.Name)
	}
	var onSuccess, onFailure *string
	if d := in.DestinationConfig; d != nil {
		if d.OnSuccess != nil {
			onSuccess = &d.OnSuccess.Destination
		}
		if d.OnFailure != nil {
			onFailure = &d.OnFailure.Destination
		}
	}
	for field, v := range map[string]*string{"OnSuccess destination": onSuccess, "OnFailure destination": onFailure} {
		if v != nil {
			if err := s.allowTarget(r, field, *v); err != nil {
				return err
			}
		}
	}
	updated, err := s.functions.UpdateSettings(r.Context(), fn.Name, fn.Qualifier, "", func(set model.Settings) error {
		c := &model.EventInvokeConfig{}
		if old := *set.EventInvoke; merge && old != nil {
			cp := *old
			c = &cp
		}
		if in.MaximumRetryAttempts != nil || !merge {
			c.MaximumRetryAttempts = in.MaximumRetryAttempts
		}
		if in.MaximumEventAgeInSeconds != nil || !merge {
			c.MaximumEventAgeInSeconds = in.MaximumEventAgeInSeconds
		}
		if onSuccess != nil || !merge {
			c.OnSuccess = deref(onSuccess)
		}
		if onFailure != nil || !merge {
			c.OnFailure = deref(onFailure)
		}
		c.LastModified = time.Now().UTC()
		if err := c.Validate(); err != nil {
			return err
		}
		*set.EventInvoke = c
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.eventInvokeOutput(updated))
	return nil
}

// noEventInvokeConfig is Lambda's 404 for a function without one.
func (s *Server) noEventInvokeConfig(name string) error {
	return fmt.Errorf("The function %s doesn't have an EventInvokeConfig: %w", model.ARN(s.cfg.Region, s.cfg.AccountID, name), errdefs.ErrNotFound)
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func (s *Server) getEventInvokeConfig(w http.ResponseWriter, r *http.Request) error {
	fn, err := s.lookup(r)
	if err == nil && fn.EventInvoke == nil {
		err = s.noEventInvokeConfig(fn.Name)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.eventInvokeOutput(fn))
	return nil
}

// listEventInvokeConfigs lists the configurations of $LATEST, each
// version and each alias.
func (s *Server) listEventInvokeConfigs(w http.ResponseWriter, r *http.Request) error {
	fn, err := s.record(r)
	if err != nil {
		return err
	}
	qualifiers := []string{model.LatestVersion}
	for _, v := range fn.Versions {
		qualifiers = append(qualifiers, v.Version)
	}
	for _, a := range fn.Aliases {
		qualifiers = append(qualifiers, a.Name)
	}
	out := []eventInvokeConfigOutput{}
	for _, q := range qualifiers {
		if v, err := fn.View(q); err == nil && v.EventInvoke != nil {
			out = append(out, s.eventInvokeOutput(v))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"FunctionEventInvokeConfigs": out})
	return nil
}

func (s *Server) deleteEventInvokeConfig(w http.ResponseWriter, r *http.Request) error {
	fn, err := s.lookup(r)
	if err == nil && fn.EventInvoke == nil {
		err = s.noEventInvokeConfig(fn.Name)
	}
	if err == nil {
		_, err = s.functions.UpdateSettings(r.Context(), fn.Name, fn.Qualifier, "", func(set model.Settings) error {
			*set.EventInvoke = nil
			return nil
		})
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
