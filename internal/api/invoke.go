package api

import (
	"encoding/base64"
	"fmt"
	"net/http"

	"icebox/internal/errdefs"
	"icebox/internal/invoke"
	"icebox/internal/model"
)

func (s *Server) invoke(w http.ResponseWriter, r *http.Request) error {
	typ := invoke.Type(r.Header.Get("X-Amz-Invocation-Type"))
	tail := r.Header.Get("X-Amz-Log-Type") == "Tail"
	if tail && typ != "" && typ != invoke.RequestResponse {
		return fmt.Errorf("LogType Tail is only supported for the RequestResponse invocation type: %w", errdefs.ErrInvalid)
	}
	fn, err := s.lookup(r)
	if err != nil {
		return err
	}
	res, err := s.invoker.Invoke(r.Context(), invokeRequest(r, &fn, typ))
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("X-Amz-Executed-Version", res.ExecutedVersion)
	if res.RequestID != "" {
		h.Set("x-amzn-RequestId", res.RequestID)
	}
	switch typ {
	case invoke.DryRun:
		w.WriteHeader(http.StatusNoContent)
		return nil
	case invoke.Event:
		// The event is stored; it runs later.
		w.WriteHeader(http.StatusAccepted)
		return nil
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
	return nil
}

// invokeRequest is the invocation an Invoke or InvokeWithResponseStream
// request asks for, of fn, the function its path names.
func invokeRequest(r *http.Request, fn *model.Function, typ invoke.Type) invoke.Request {
	return invoke.Request{
		FunctionName:  r.PathValue("name"),
		Qualifier:     r.URL.Query().Get("Qualifier"),
		Function:      fn,
		Type:          typ,
		Payload:       bodyOf(r),
		ClientContext: r.Header.Get("X-Amz-Client-Context"),
		TraceHeader:   r.Header.Get("X-Amzn-Trace-Id"),
		Tail:          r.Header.Get("X-Amz-Log-Type") == "Tail",
	}
}
