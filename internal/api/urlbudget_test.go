package api

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"icebox/internal/model"
	"icebox/internal/policy"
)

// urlFunctions holds one function with a NONE URL open to everyone.
type urlFunctions struct {
	Functions
	fn model.Function
}

func (f urlFunctions) Get(name string) (model.Function, error) { return f.fn, nil }

// TestURLBodiesHaveTheirOwnBudget: callers of a public URL holding every
// byte their listener may hold leave the API's budget whole.
func TestURLBodiesHaveTheirOwnBudget(t *testing.T) {
	id := model.NewURLID()
	fn := model.Function{Name: "f", URLs: []model.FunctionURL{{ID: id, AuthType: model.URLAuthNone, InvokeMode: model.InvokeBuffered}},
		Policy: &policy.Document{Statement: []policy.Statement{{Effect: policy.Allow, Principal: &policy.Principal{Any: true},
			Action: policy.Values{"lambda:InvokeFunctionUrl"}, Resource: policy.Values{"*"}}}}}
	iv := fakeInvoker{res: model.Result{Payload: []byte(`{}`)}}
	s := New(Config{Region: "us-east-1", AccountID: "000000000000", BodyBudget: 1 << 20}, urlFunctions{fn: fn}, iv, nil, fakeAccount{}, nil, nil, slog.New(slog.DiscardHandler))
	s.cfg.NoAuth = true // the API's own calls: no signature to check here
	s.FunctionChanged(nil, &fn)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := s.URLHTTPServer()
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })

	// The URL listener's budget is spent (bodies in flight elsewhere).
	if !s.urlBodies.take(1 << 20) {
		t.Fatal("fresh URL budget refused its whole limit")
	}
	body := bytes.Repeat([]byte("x"), 1024)
	req, _ := http.NewRequestWithContext(context.Background(), "POST", "http://"+l.Addr().String()+"/", bytes.NewReader(body))
	req.Host = id + "." + s.urlDomain()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("URL call with its budget spent: %d, want 503", resp.StatusCode)
	}
	// The API still takes bodies.
	w := httptest.NewRecorder()
	s.ServeHTTP(w, httptest.NewRequest("POST", "/2015-03-31/functions/f/invocations", bytes.NewReader([]byte(`{"a":1}`))))
	if w.Code != http.StatusOK {
		t.Errorf("API invoke while the URL budget is spent: %d %s", w.Code, w.Body)
	}
	// And once the URL budget is back, URL calls run again.
	s.urlBodies.give(1 << 20)
	req, _ = http.NewRequest("POST", "http://"+l.Addr().String()+"/", bytes.NewReader(body))
	req.Host = id + "." + s.urlDomain()
	if resp, err = http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("URL call with its budget back: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
}
