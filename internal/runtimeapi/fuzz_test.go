package runtimeapi

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"icebox/internal/environment"
	"icebox/internal/environment/envtest"
)

// FuzzRuntimeAPI sends one request made of fuzzed method, path, headers and
// body to the Runtime API's handler, in process and without a sandbox, while
// an invocation is (or is not) in the runtime's hands. The runtime is outside
// icebox's trust boundary, so whatever it sends:
//   - the server never panics and never answers 5xx;
//   - only a POST to /response or /error naming the request id the runtime
//     holds completes the invocation, exactly once, and then it always does
//     (a GET /next fails it, as Lambda does when a runtime moves on without
//     answering);
//   - what reaches the invoker as an error or init error is valid JSON with
//     an error type, so the API can hand it to the caller as is.
//
// kind selects the endpoint (0 response, 1 error, 2 init/error, 3 id is the
// raw path); kind&4 means no invocation is in flight: the environment is
// still initializing.
func FuzzRuntimeAPI(f *testing.F) {
	const goodID = "8476a536-e9f4-11e8-9739-2dfe598c3fcd"
	f.Add("POST", uint8(0), goodID, "", "", []byte(`{"ok":true}`))
	f.Add("POST", uint8(1), goodID, "Handler.Error", "", []byte(`{"errorMessage":"boom","errorType":"E"}`))
	f.Add("POST", uint8(1), goodID, "", "Content-Type: text/plain", []byte("not json"))
	f.Add("POST", uint8(2), "", "", "Lambda-Runtime-Function-Error-Type: Runtime.ImportError", []byte{})
	f.Add("POST", uint8(0), "wrong", "", "", []byte(`1`))
	f.Add("POST", uint8(4), goodID, "", "", []byte(`1`))
	f.Add("GET", uint8(0), goodID, "", "", []byte(nil))
	f.Add("POST", uint8(0), goodID, "", "Lambda-Runtime-Function-Response-Mode: streaming\nContent-Type: text/plain", []byte("a streamed piece"))
	f.Add("POST", uint8(1), goodID, "", "Lambda-Runtime-Function-Response-Mode: STREAMING", []byte(`{}`))
	f.Add("post", uint8(1), strings.ToUpper(goodID), "", "", []byte(`{}`))
	f.Add("POST", uint8(3), "/2018-06-01/runtime/invocation/"+goodID+"/../"+goodID+"/response", "", "", []byte(`"x"`))
	f.Add("POST", uint8(3), "/2018-06-01/runtime/invocation/%38476a536-e9f4-11e8-9739-2dfe598c3fcd/error?x=1", "", "", []byte(`[]`))
	f.Add("PUT", uint8(3), "/2018-06-01/runtime/invocation/next", "", "Transfer-Encoding: chunked\nX: \x00", []byte("\xff"))
	f.Fuzz(func(t *testing.T, method string, kind uint8, id, errType, hdrs string, body []byte) {
		const invPath = "/2018-06-01/runtime/invocation/"
		var path string
		switch kind % 4 {
		case 0:
			path = invPath + url.PathEscape(id) + "/response"
		case 1:
			path = invPath + url.PathEscape(id) + "/error"
		case 2:
			path = "/2018-06-01/runtime/init/error"
		case 3:
			path = id
			if !strings.HasPrefix(path, "/") {
				path = "/" + path
			}
		}
		req, err := http.NewRequest(method, "http://127.0.0.1:9001"+path, bytes.NewReader(body))
		if err != nil {
			return // a request line net/http would refuse before any handler runs
		}
		if errType != "" {
			req.Header.Set("Lambda-Runtime-Function-Error-Type", errType)
		}
		for line := range strings.SplitSeq(hdrs, "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok {
				req.Header.Add(k, strings.TrimSpace(v))
			}
		}

		env, sb := environment.New(environment.Config{}), envtest.New()
		started := make(chan environment.Outcome, 1)
		go func() {
			out, _ := env.Start(environment.Runtime{Sandbox: sb}, "init", time.Minute)
			started <- out
		}()
		var res chan environment.Outcome
		defer func() {
			env.Destroy()
			sb.Kill()
			<-started
			if res != nil {
				<-res
			}
		}()
		for env.State() != environment.Initializing {
			runtime.Gosched()
		}
		h := New(env, Config{}).http.Handler
		if kind&4 == 0 {
			// Init ends at a first /next, dropped at once; then an event is
			// handed over and taken.
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, invPath+"next", nil).WithContext(ctx))
			if out := <-started; out.Kind != environment.Ready {
				t.Fatalf("start: %+v", out)
			}
			started <- environment.Outcome{}
			res = make(chan environment.Outcome, 1)
			go func() {
				out, _ := env.Invoke(testInvocation(goodID), time.Minute)
				res <- out
			}()
			for env.State() != environment.HandingOver {
				runtime.Gosched()
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, invPath+"next", nil))
			if rec.Code != http.StatusOK || !env.Holds(goodID) {
				t.Fatalf("/next: status %d, state %s", rec.Code, env.State())
			}
		}

		// A /next parks until its context ends.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
		defer cancel()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req.WithContext(ctx))
		if rec.Code >= 500 {
			t.Fatalf("%s %q: status %d %q", method, path, rec.Code, rec.Body)
		}

		goodResponse := invPath + goodID + "/response"
		goodError := invPath + goodID + "/error"
		isNext := req.Method == http.MethodGet && req.URL.Path == invPath+"next"
		mayComplete := res != nil && (isNext || req.Method == http.MethodPost &&
			(req.URL.Path == goodResponse || req.URL.Path == goodError))
		mustComplete := mayComplete && !isNext && kind%4 < 2 && id == goodID
		if res != nil {
			if env.Holds(goodID) {
				if mustComplete {
					t.Fatalf("%s %q did not complete the invocation: status %d %q", method, path, rec.Code, rec.Body)
				}
			} else {
				r := <-res
				res <- r
				if !mayComplete {
					t.Fatalf("%s %q (URL path %q) completed the invocation: %+v", method, path, req.URL.Path, r)
				}
				if r.Kind != environment.Answered && (r.ErrorType == "" || !json.Valid(r.Payload)) {
					t.Fatalf("%s %q failed the call with type %q, payload %q", method, path, r.ErrorType, r.Payload)
				}
				if req.URL.Path == goodResponse && r.Kind == environment.Answered && !bytes.Equal(r.Payload, body) {
					t.Fatalf("/response payload %q, want %q", r.Payload, body)
				}
				if !isNext && rec.Code != http.StatusAccepted && rec.Code != http.StatusRequestEntityTooLarge {
					t.Fatalf("completed with status %d", rec.Code)
				}
			}
		}
		if res == nil && env.State() == environment.Draining {
			out := <-started
			started <- out
			if req.URL.Path != "/2018-06-01/runtime/init/error" || out.Kind != environment.FunctionError || !json.Valid(out.Payload) {
				t.Fatalf("%s %q failed init: %s %q", method, path, out.Kind, out.Payload)
			}
			// A body that is not JSON is wrapped, and then carries a type.
			var e struct{ ErrorType string }
			if !bytes.Equal(out.Payload, body) && (json.Unmarshal(out.Payload, &e) != nil || e.ErrorType == "") {
				t.Fatalf("init error %q has no error type", out.Payload)
			}
		} else if res == nil && kind%4 == 2 && req.Method == http.MethodPost && rec.Code == http.StatusAccepted {
			t.Fatalf("/init/error accepted but not reported (state %s)", env.State())
		}
	})
}
