package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"

	"icebox/internal/model"
)

// FuzzURLResponse: whatever a function returns, parseURLResponse either
// refuses it or yields a final status; writing that response never panics,
// never sends a header a client would split or a reserved one under its
// own name, and a CORS configuration keeps the function's CORS headers out.
func FuzzURLResponse(f *testing.F) {
	for _, seed := range []string{
		`{"statusCode":201,"headers":{"X-A":"b","Content-Length":"1"},"cookies":["a=1"],"body":"aGk=","isBase64Encoded":true}`,
		`{"statusCode":200,"headers":{"Access-Control-Allow-Origin":"*","bad name":"x","x":"a\r\nb: c"}}`,
		`{"statusCode":"200"}`, `{"statusCode":99}`, `{"statusCode":204,"body":{"a":1}}`,
		`"text"`, `[1,2]`, `17`, `null`, `{"message":"no status"}`, `{"statusCode":200,"headers":{"Transfer-Encoding":"chunked","Connection":"close"}}`,
	} {
		f.Add([]byte(seed))
	}
	cors := &model.URLCors{AllowOrigins: []string{"*"}}
	f.Fuzz(func(t *testing.T, payload []byte) {
		res, err := parseURLResponse(payload)
		if err != nil {
			return
		}
		if s := res.head.StatusCode; s < 200 || s > 599 {
			t.Fatalf("status %d accepted", s)
		}
		for _, c := range []*model.URLCors{nil, cors} {
			w := httptest.NewRecorder()
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Origin", "https://o.example")
			writeURLHead(w, r, c, res.head)
			for k, vs := range w.Header() {
				lk := strings.ToLower(k)
				if !httpguts.ValidHeaderFieldName(k) || remappedHeaders[lk] {
					t.Fatalf("header %q sent", k)
				}
				for _, v := range vs {
					if !httpguts.ValidHeaderFieldValue(v) {
						t.Fatalf("header %s: value %q sent", k, v)
					}
				}
				if c != nil && strings.HasPrefix(lk, "access-control-") && k != "Access-Control-Allow-Origin" {
					t.Fatalf("the function's %s kept under a CORS configuration", k)
				}
			}
			if c != nil && w.Header().Get("Access-Control-Allow-Origin") != "*" {
				t.Fatalf("CORS origin %q", w.Header().Get("Access-Control-Allow-Origin"))
			}
			if w.Code != res.head.StatusCode && w.Code != http.StatusOK {
				t.Fatalf("wrote %d for %d", w.Code, res.head.StatusCode)
			}
		}
	})
}
