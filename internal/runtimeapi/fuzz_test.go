package runtimeapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// FuzzRuntimeAPI sends one request made of fuzzed method, path, headers and
// body to the Runtime API's handler, in process and without a sandbox, while
// an invocation is (or is not) in the runtime's hands. The runtime is outside
// icebox's trust boundary, so whatever it sends:
//   - the server never panics and never answers 5xx;
//   - only a POST to /response or /error naming the current request id
//     completes the invocation, exactly once, and then it always does;
//   - what reaches the invoker as an error or init error is valid JSON with
//     an error type, so the API can hand it to the caller as is.
//
// kind selects the endpoint (0 response, 1 error, 2 init/error, 3 id is the
// raw path); kind&4 means no invocation is in flight.
func FuzzRuntimeAPI(f *testing.F) {
	const goodID = "8476a536-e9f4-11e8-9739-2dfe598c3fcd"
	f.Add("POST", uint8(0), goodID, "", "", []byte(`{"ok":true}`))
	f.Add("POST", uint8(1), goodID, "Handler.Error", "", []byte(`{"errorMessage":"boom","errorType":"E"}`))
	f.Add("POST", uint8(1), goodID, "", "Content-Type: text/plain", []byte("not json"))
	f.Add("POST", uint8(2), "", "", "Lambda-Runtime-Function-Error-Type: Runtime.ImportError", []byte{})
	f.Add("POST", uint8(0), "wrong", "", "", []byte(`1`))
	f.Add("POST", uint8(4), goodID, "", "", []byte(`1`))
	f.Add("GET", uint8(0), goodID, "", "", []byte(nil))
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

		s := New(nil)
		defer s.Close()
		h := s.http.Handler
		var c *call
		if kind&4 == 0 {
			c = &call{inv: testInvocation(goodID), result: make(chan Response, 1)}
			if err := s.deliver(c); err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, invPath+"next", nil))
			if rec.Code != http.StatusOK || s.current != c {
				t.Fatalf("/next: status %d, current %v", rec.Code, s.current)
			}
		}

		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %q: status %d %q", method, path, rec.Code, rec.Body)
		}

		goodResponse := invPath + goodID + "/response"
		goodError := invPath + goodID + "/error"
		mayComplete := c != nil && req.Method == http.MethodPost &&
			(req.URL.Path == goodResponse || req.URL.Path == goodError)
		mustComplete := mayComplete && kind%4 < 2 && id == goodID
		if c != nil {
			select {
			case r := <-c.result:
				if !mayComplete {
					t.Fatalf("%s %q (URL path %q) completed the invocation: %+v", method, path, req.URL.Path, r)
				}
				if s.current != nil {
					t.Fatal("invocation completed but still current")
				}
				if req.URL.Path == goodError && (r.ErrorType == "" || !json.Valid(r.Payload)) {
					t.Fatalf("/error gave type %q, payload %q", r.ErrorType, r.Payload)
				}
				if req.URL.Path == goodResponse && r.ErrorType == "" && !bytes.Equal(r.Payload, body) {
					t.Fatalf("/response payload %q, want %q", r.Payload, body)
				}
				if rec.Code != http.StatusAccepted && rec.Code != http.StatusRequestEntityTooLarge {
					t.Fatalf("completed with status %d", rec.Code)
				}
			default:
				if mustComplete {
					t.Fatalf("%s %q did not complete the invocation: status %d %q", method, path, rec.Code, rec.Body)
				}
				if s.current != c {
					t.Fatal("a request that did not complete the invocation dropped it")
				}
			}
		}
		select {
		case b := <-s.InitError():
			if req.URL.Path != "/2018-06-01/runtime/init/error" || !json.Valid(b) {
				t.Fatalf("%s %q gave init error %q", method, path, b)
			}
			// A body that is not JSON is wrapped, and then carries a type.
			var e struct{ ErrorType string }
			if !bytes.Equal(b, body) && (json.Unmarshal(b, &e) != nil || e.ErrorType == "") {
				t.Fatalf("init error %q has no error type", b)
			}
		default:
			if kind%4 == 2 && req.Method == http.MethodPost && rec.Code == http.StatusAccepted {
				t.Fatal("/init/error accepted but not reported")
			}
		}
	})
}
