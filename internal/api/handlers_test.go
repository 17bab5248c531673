package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"icebox/internal/admission"
	"icebox/internal/errdefs"
	"icebox/internal/invoke"
	"icebox/internal/model"
)

// Handlers against fakes: what the services answer, the client sees in
// Lambda's shape, and a platform fault never leaks its details.

type fakeFunctions struct {
	Functions // calls nobody set up panic
	createErr error
}

func (f fakeFunctions) Create(ctx context.Context, fn model.Function, zip []byte) (model.Function, error) {
	return model.Function{}, f.createErr
}

type fakeInvoker struct {
	Invoker
	res model.Result
	err error
}

func (f fakeInvoker) Resolve(ref, qualifier string) (string, model.Function, error) {
	return ref, model.Function{Name: ref}, nil
}

func (f fakeInvoker) Invoke(ctx context.Context, req invoke.Request) (model.Result, error) {
	return f.res, f.err
}

type fakeAccount struct{}

func (fakeAccount) Limits() admission.Config { return admission.Config{} }
func (fakeAccount) Usage() admission.Usage   { return admission.Usage{} }

func serve(t *testing.T, fs Functions, iv Invoker, method, path, body string, header map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	s := New(Config{Region: "us-east-1", AccountID: "000000000000", NoAuth: true}, fs, iv, nil, fakeAccount{}, nil, nil, slog.New(slog.DiscardHandler))
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	for k, v := range header {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	return w
}

func TestHandlersWithFakes(t *testing.T) {
	createBody := `{"FunctionName":"f","Runtime":"provided.al2023","Handler":"h","Role":"arn:aws:iam::000000000000:role/r","Code":{"ZipFile":"UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="}}`
	w := serve(t, fakeFunctions{createErr: errors.New("disk on fire at /secret/path")}, fakeInvoker{}, "POST", "/2015-03-31/functions", createBody, nil)
	if w.Code != 500 || w.Header().Get("X-Amzn-ErrorType") != "ServiceException" || strings.Contains(w.Body.String(), "secret") {
		t.Errorf("platform fault: %d %s %s", w.Code, w.Header().Get("X-Amzn-ErrorType"), w.Body)
	}
	w = serve(t, fakeFunctions{createErr: fmt.Errorf("Function already exist: f: %w", errdefs.ErrConflict)}, fakeInvoker{}, "POST", "/2015-03-31/functions", createBody, nil)
	if w.Code != 409 || !strings.Contains(w.Body.String(), "Function already exist: f") {
		t.Errorf("conflict: %d %s", w.Code, w.Body)
	}

	throttled := &errdefs.ThrottleError{Reason: "ConcurrentInvocationLimitExceeded", Message: "Rate Exceeded.", RetryAfterSeconds: 3}
	w = serve(t, nil, fakeInvoker{err: throttled}, "POST", "/2015-03-31/functions/f/invocations", "{}", nil)
	if w.Code != 429 || w.Header().Get("Retry-After") != "3" || !strings.Contains(w.Body.String(), `"Reason":"ConcurrentInvocationLimitExceeded"`) {
		t.Errorf("throttle: %d %v %s", w.Code, w.Header(), w.Body)
	}

	// A function's failure is data: 200, its error header, its body.
	res := model.Result{RequestID: "rid", ExecutedVersion: "$LATEST", FunctionError: model.FunctionErrorUnhandled, Payload: []byte(`{"errorType":"Boom"}`), LogTail: []byte("tail")}
	w = serve(t, nil, fakeInvoker{res: res}, "POST", "/2015-03-31/functions/f/invocations", "{}", map[string]string{"X-Amz-Log-Type": "Tail"})
	body, _ := io.ReadAll(w.Body)
	if w.Code != 200 || w.Header().Get("X-Amz-Function-Error") != "Unhandled" || w.Header().Get("X-Amzn-RequestId") != "rid" ||
		w.Header().Get("X-Amz-Log-Result") != "dGFpbA==" || !bytes.Equal(body, res.Payload) {
		t.Errorf("function error: %d %v %s", w.Code, w.Header(), body)
	}
	// An event is accepted with 202 and no body.
	w = serve(t, nil, fakeInvoker{res: model.Result{RequestID: "rid"}}, "POST", "/2015-03-31/functions/f/invocations", "{}", map[string]string{"X-Amz-Invocation-Type": "Event"})
	if w.Code != http.StatusAccepted || w.Body.Len() != 0 {
		t.Errorf("event: %d %s", w.Code, w.Body)
	}
}
