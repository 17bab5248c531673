package api

import (
	"encoding/base64"
	"fmt"
	"net/http"

	"icebox/internal/errdefs"
	"icebox/internal/invoke"
)

func (s *Server) invoke(w http.ResponseWriter, r *http.Request) {
	typ := invoke.Type(r.Header.Get("X-Amz-Invocation-Type"))
	body := bodyOf(r)
	req := invoke.Request{
		FunctionName:  r.PathValue("name"),
		Qualifier:     r.URL.Query().Get("Qualifier"),
		Type:          typ,
		Payload:       body,
		ClientContext: r.Header.Get("X-Amz-Client-Context"),
	}
	tail := r.Header.Get("X-Amz-Log-Type") == "Tail"
	if tail && typ != "" && typ != invoke.RequestResponse {
		s.fail(w, r, fmt.Errorf("LogType Tail is only supported for the RequestResponse invocation type: %w", errdefs.ErrInvalid))
		return
	}
	res, err := s.invoker.Invoke(r.Context(), req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	h := w.Header()
	h.Set("X-Amz-Executed-Version", res.ExecutedVersion)
	if res.RequestID != "" {
		h.Set("x-amzn-RequestId", res.RequestID)
	}
	switch typ {
	case invoke.DryRun:
		w.WriteHeader(http.StatusNoContent)
		return
	case invoke.Event:
		// The event is stored; it runs later.
		w.WriteHeader(http.StatusAccepted)
		return
	}
	if res.FunctionError != "" {
		h.Set("X-Amz-Function-Error", res.FunctionError)
	}
	if tail {
		h.Set("X-Amz-Log-Result", base64.StdEncoding.EncodeToString(res.LogTail))
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(res.Payload)
}
