package runtimeapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"icebox/internal/environment"
	"icebox/internal/model"
)

// extCall is one Extensions API request: method, path under 2020-01-01,
// headers, body; it returns the status, headers and body.
func (h *harness) extCall(ctx context.Context, method, path string, hdr map[string]string, body string) (int, http.Header, []byte) {
	h.t.Helper()
	base := strings.TrimSuffix(h.base, "/2018-06-01") + "/2020-01-01/extension"
	req, _ := http.NewRequestWithContext(ctx, method, base+path, bytes.NewReader([]byte(body)))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func wantRefusal(t *testing.T, status int, body []byte, typ string) {
	t.Helper()
	var e struct{ ErrorType, ErrorMessage string }
	if err := json.Unmarshal(body, &e); status != http.StatusForbidden || err != nil || e.ErrorType != typ || e.ErrorMessage == "" {
		t.Errorf("got %d %s, want 403 %s with a message", status, body, typ)
	}
}

// An extension registers (as AWS's samples do), gets INVOKE with the
// request id, deadline, ARN and tracing over HTTP; the call's answer comes
// back before the extension is done with it.
func TestExtensionsAPI(t *testing.T) {
	h := serve(t)
	ctx := context.Background()
	status, hdr, body := h.extCall(ctx, "POST", "/register",
		map[string]string{"Lambda-Extension-Name": "agent", "Lambda-Extension-Accept-Feature": "accountId"}, `{"events":["INVOKE"]}`)
	id := hdr.Get("Lambda-Extension-Identifier")
	if status != http.StatusOK || id == "" || !bytes.Contains(body, []byte(`"functionName"`)) || !bytes.Contains(body, []byte(`"handler"`)) {
		t.Fatalf("register: %d %s %q", status, body, id)
	}
	evs := make(chan []byte, 1)
	go func() {
		_, _, b := h.extCall(ctx, "GET", "/event/next", map[string]string{"Lambda-Extension-Identifier": id}, "")
		evs <- b
	}()
	evc := h.next(ctx)
	if out := recvOutcome(t, h.start); out.Kind != environment.Ready {
		t.Fatalf("start: %+v", out)
	}
	inv := testInvocation("req-1")
	res := h.invoke(inv)
	h.recv(evc)
	var ev struct {
		EventType, RequestID, InvokedFunctionArn string
		DeadlineMs                               int64
		Tracing                                  struct{ Type, Value string }
	}
	if err := json.Unmarshal(<-evs, &ev); err != nil || ev.EventType != "INVOKE" || ev.RequestID != "req-1" ||
		ev.InvokedFunctionArn != inv.FunctionARN || ev.DeadlineMs == 0 || ev.Tracing.Type != "X-Amzn-Trace-Id" || ev.Tracing.Value != inv.TraceID {
		t.Fatalf("INVOKE event %+v (%v)", ev, err)
	}
	h.post("/runtime/invocation/req-1/response", nil, []byte(`1`))
	if out := h.result(res); out.Kind != environment.Answered {
		t.Fatalf("outcome %+v", out)
	}
	if s := h.env.State(); s != environment.Finishing {
		t.Errorf("after the answer: %s", s)
	}
}

// What the Extensions API refuses, with Lambda's error types.
func TestExtensionsAPIRefusals(t *testing.T) {
	h := serve(t)
	ctx := context.Background()
	status, _, body := h.extCall(ctx, "POST", "/register", nil, `{"events":["INVOKE"]}`)
	wantRefusal(t, status, body, model.ErrorTypeExtensionName)
	status, _, body = h.extCall(ctx, "POST", "/register", map[string]string{"Lambda-Extension-Name": "a"}, `{"events":`)
	wantRefusal(t, status, body, "InvalidRequestFormat")
	status, _, body = h.extCall(ctx, "POST", "/register", map[string]string{"Lambda-Extension-Name": "a"}, `{"events":["SHUTDOWN"]}`)
	wantRefusal(t, status, body, model.ErrorTypeInvalidExtensionEvent)
	status, _, body = h.extCall(ctx, "GET", "/event/next", nil, "")
	wantRefusal(t, status, body, model.ErrorTypeMissingHeader)
	status, _, body = h.extCall(ctx, "GET", "/event/next", map[string]string{"Lambda-Extension-Identifier": "forged"}, "")
	wantRefusal(t, status, body, model.ErrorTypeUnknownExtension)
	status, _, body = h.extCall(ctx, "POST", "/init/error", map[string]string{"Lambda-Extension-Identifier": "forged", "Lambda-Extension-Function-Error-Type": "Extension.X"}, "")
	wantRefusal(t, status, body, model.ErrorTypeUnknownExtension)

	_, hdr, _ := h.extCall(ctx, "POST", "/register", map[string]string{"Lambda-Extension-Name": "a"}, `{"events":[]}`)
	id := hdr.Get("Lambda-Extension-Identifier")
	status, _, body = h.extCall(ctx, "POST", "/init/error", map[string]string{"Lambda-Extension-Identifier": id}, "")
	wantRefusal(t, status, body, model.ErrorTypeMissingHeader)
	status, _, _ = h.extCall(ctx, "POST", "/init/error", map[string]string{"Lambda-Extension-Identifier": id, "Lambda-Extension-Function-Error-Type": "Extension.NoConfig"}, `{"errorMessage":"missing","errorType":"Extension.NoConfig"}`)
	if status != http.StatusAccepted {
		t.Errorf("init/error: %d", status)
	}
	if out := recvOutcome(t, h.start); out.Kind != environment.FunctionError || out.ErrorType != "Extension.NoConfig" {
		t.Errorf("start: %+v", out)
	}
	status, _, body = h.extCall(ctx, "POST", "/register", map[string]string{"Lambda-Extension-Name": "late"}, `{"events":[]}`)
	wantRefusal(t, status, body, model.ErrorTypeRegistrationClosed)
}
