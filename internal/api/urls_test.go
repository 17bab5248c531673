package api_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"icebox/internal/auth/authtest"
	"icebox/internal/daemon"
	"icebox/internal/sandbox/sandboxtest"
)

// Function URLs against fake sandboxes: the configuration API, and calls
// through the URL listener with every auth, CORS and response rule.

// urlRuntime is a fake function behind a URL. Its answer depends on the
// path: /fail fails, /respond answers with the JSON the caller sent as
// the body, /hang never answers, anything else answers with the event
// itself.
func urlRuntime(ctx context.Context, sb *sandboxtest.Sandbox) {
	for ctx.Err() == nil {
		id, payload, err := sb.Next(ctx)
		if err != nil {
			return
		}
		var ev events.LambdaFunctionURLRequest
		_ = json.Unmarshal(payload, &ev)
		kind, out := "response", payload
		switch ev.RawPath {
		case "/fail":
			kind, out = "error", []byte(`{"errorMessage":"boom","errorType":"Boom"}`)
		case "/respond":
			out = []byte(ev.Body)
		case "/hang":
			<-ctx.Done()
			return
		}
		if sb.Respond(ctx, id, kind, out) != nil {
			return
		}
	}
}

func startURLDaemon(t *testing.T) *daemon.Daemon {
	t.Helper()
	cfg := daemon.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), ShutdownTimeout: 5 * time.Second,
		RootAccessKeyID: authtest.AccessKeyID, RootSecretAccessKey: authtest.SecretAccessKey,
		Sandboxes: &sandboxtest.Factory{Runtime: func(int) sandboxtest.Runtime { return urlRuntime }}}
	d, err := daemon.Start(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Shutdown() })
	return d
}

type urlConfig struct {
	FunctionUrl, FunctionArn, AuthType, InvokeMode, CreationTime, LastModifiedTime string
	Cors                                                                           *struct {
		AllowOrigins, AllowMethods, AllowHeaders, ExposeHeaders []string
		AllowCredentials                                        bool
		MaxAge                                                  int
	}
}

var urlRE = regexp.MustCompile(`^http://([a-z0-9]{32})\.lambda-url\.us-east-1\.localhost:(\d+)/$`)

// urlClient sends every request to the URL listener whatever its host
// says, as a resolver answering *.localhost with loopback would.
func urlClient(d *daemon.Daemon) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, d.URLAddr())
	}}}
}

// urlCall sends a request to a function URL, signed with creds unless nil.
func urlCall(t *testing.T, d *daemon.Daemon, creds *aws.Credentials, method, url string, body []byte, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if creds != nil {
		if err := authtest.SignAs(req, *creds); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := urlClient(d).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp, raw
}

// wantURLError checks a URL error: status and Lambda's {"Message": ...}.
func wantURLError(t *testing.T, what string, resp *http.Response, raw []byte, status int, msg string) {
	t.Helper()
	var body struct{ Message string }
	if resp.StatusCode != status || json.Unmarshal(raw, &body) != nil || body.Message != msg {
		t.Errorf("%s: %d %s, want %d {\"Message\":%q}", what, resp.StatusCode, raw, status, msg)
	}
}

func TestFunctionURLConfigAPI(t *testing.T) {
	d := startURLDaemon(t)
	getJSON(t, d, "POST", "/2015-03-31/functions", createBody("f", nil), 201, nil)
	const path = "/2021-10-31/functions/f/url"
	var created urlConfig
	getJSON(t, d, "POST", path, map[string]any{"AuthType": "NONE"}, 201, &created)
	m := urlRE.FindStringSubmatch(created.FunctionUrl)
	if m == nil || created.FunctionArn != "arn:aws:lambda:us-east-1:000000000000:function:f" || created.AuthType != "NONE" ||
		created.InvokeMode != "BUFFERED" || created.CreationTime == "" || !strings.HasSuffix(d.URLAddr(), ":"+m[2]) {
		t.Fatalf("created: %+v (URL listener %s)", created, d.URLAddr())
	}
	if a := call(t, d, root, "POST", path, "", map[string]any{"AuthType": "NONE"}); a.msg != "Failed to create function url config for [functionArn = arn:aws:lambda:us-east-1:000000000000:function:f]. Error message:  FunctionUrlConfig exists for this Lambda function" {
		t.Errorf("create again: %d %s %q", a.status, a.code, a.msg)
	}
	for _, tc := range []struct {
		what, method, path string
		body               any
		status             int
		code               string
	}{
		{"again", "POST", path, map[string]any{"AuthType": "NONE"}, 409, "ResourceConflictException"},
		{"no auth type", "POST", path, map[string]any{}, 400, "InvalidParameterValueException"},
		{"unknown alias", "POST", path + "?Qualifier=live", map[string]any{"AuthType": "NONE"}, 404, "ResourceNotFoundException"},
		{"bad auth type", "PUT", path, map[string]any{"AuthType": "OPEN"}, 400, "InvalidParameterValueException"},
		{"bad invoke mode", "PUT", path, map[string]any{"InvokeMode": "FAST"}, 400, "InvalidParameterValueException"},
		{"max age", "PUT", path, map[string]any{"Cors": map[string]any{"MaxAge": 86401}}, 400, "InvalidParameterValueException"},
		{"7 methods", "PUT", path, map[string]any{"Cors": map[string]any{"AllowMethods": []string{"GET", "PUT", "POST", "HEAD", "PATCH", "DELETE", "*"}}}, 400, "InvalidParameterValueException"},
		{"a line break in an origin", "PUT", path, map[string]any{"Cors": map[string]any{"AllowOrigins": []string{"https://a\r\nSet-Cookie: x=1"}}}, 400, "InvalidParameterValueException"},
		{"version qualifier", "GET", path + "?Qualifier=1", nil, 400, "InvalidParameterValueException"},
		{"missing function", "GET", "/2021-10-31/functions/nope/url", nil, 404, "ResourceNotFoundException"},
	} {
		var b []byte
		if tc.body != nil {
			b, _ = json.Marshal(tc.body)
		}
		if a, raw := send(t, d, root, tc.method, tc.path, b, nil); a.status != tc.status || a.code != tc.code {
			t.Errorf("%s: %d %s %s, want %d %s", tc.what, a.status, a.code, raw, tc.status, tc.code)
		}
	}
	var updated urlConfig
	getJSON(t, d, "PUT", path, map[string]any{"AuthType": "AWS_IAM", "InvokeMode": "RESPONSE_STREAM",
		"Cors": map[string]any{"AllowOrigins": []string{"https://a.example"}, "MaxAge": 60}}, 200, &updated)
	if updated.FunctionUrl != created.FunctionUrl || updated.AuthType != "AWS_IAM" || updated.InvokeMode != "RESPONSE_STREAM" ||
		updated.Cors == nil || updated.Cors.MaxAge != 60 || updated.LastModifiedTime == "" || updated.CreationTime != created.CreationTime {
		t.Errorf("updated: %+v", updated)
	}
	var got urlConfig
	getJSON(t, d, "GET", path+"?Qualifier=$LATEST", nil, 200, &got)
	if got.FunctionUrl != created.FunctionUrl || got.AuthType != "AWS_IAM" || got.Cors == nil {
		t.Errorf("get: %+v", got)
	}
	var list struct{ FunctionUrlConfigs []urlConfig }
	getJSON(t, d, "GET", path+"s", nil, 200, &list)
	if len(list.FunctionUrlConfigs) != 1 || list.FunctionUrlConfigs[0].FunctionUrl != created.FunctionUrl {
		t.Errorf("list: %+v", list)
	}
	getJSON(t, d, "DELETE", path, nil, 204, nil)
	if a := call(t, d, root, "GET", path, "", nil); a.status != 404 || a.code != "ResourceNotFoundException" {
		t.Errorf("get after delete: %d %s", a.status, a.code)
	}
	resp, raw := urlCall(t, d, root, "GET", created.FunctionUrl, nil, nil)
	wantURLError(t, "call after delete", resp, raw, 404, "Not Found")
	// A URL made again is a new address.
	getJSON(t, d, "POST", path, map[string]any{"AuthType": "NONE"}, 201, &got)
	if got.FunctionUrl == created.FunctionUrl {
		t.Errorf("a new URL reuses the deleted one's address %s", got.FunctionUrl)
	}
}

// makeURL creates function name with a URL of authType and returns it.
func makeURL(t *testing.T, d *daemon.Daemon, name, authType string, cors map[string]any) string {
	t.Helper()
	getJSON(t, d, "POST", "/2015-03-31/functions", createBody(name, nil), 201, nil)
	in := map[string]any{"AuthType": authType}
	if cors != nil {
		in["Cors"] = cors
	}
	var c urlConfig
	getJSON(t, d, "POST", "/2021-10-31/functions/"+name+"/url", in, 201, &c)
	return c.FunctionUrl
}

// allowPublic adds the statement a NONE URL needs.
func allowPublic(t *testing.T, d *daemon.Daemon, name string) {
	t.Helper()
	getJSON(t, d, "POST", "/2015-03-31/functions/"+name+"/policy", map[string]any{"StatementId": "public", "Action": "lambda:InvokeFunctionUrl",
		"Principal": "*", "FunctionUrlAuthType": "NONE"}, 201, nil)
}

func TestFunctionURLEventAndResponse(t *testing.T) {
	d := startURLDaemon(t)
	u := makeURL(t, d, "web", "NONE", nil)
	resp, raw := urlCall(t, d, nil, "GET", u, nil, nil)
	wantURLError(t, "NONE without the policy statement", resp, raw, 403, "Forbidden")
	// A statement for AWS_IAM URLs is not the one NONE needs.
	getJSON(t, d, "POST", "/2015-03-31/functions/web/policy", map[string]any{"StatementId": "iam-only", "Action": "lambda:InvokeFunctionUrl",
		"Principal": "*", "FunctionUrlAuthType": "AWS_IAM"}, 201, nil)
	resp, raw = urlCall(t, d, nil, "GET", u, nil, nil)
	wantURLError(t, "NONE with an AWS_IAM statement", resp, raw, 403, "Forbidden")
	allowPublic(t, d, "web")

	// GET with a query and cookies: the event is payload 2.0.
	resp, raw = urlCall(t, d, nil, "GET", u+"some/path?a=1&a=2&b=x%20y", nil,
		map[string]string{"Cookie": "c1=v1; c2=v2", "X-Custom": "v", "User-Agent": "ua/1", "Connection": "keep-alive", "Upgrade": "h2c", "Proxy-Authorization": "Basic eA==",
			"X-Amzn-Trace-Id": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"})
	var ev events.LambdaFunctionURLRequest
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || json.Unmarshal(raw, &ev) != nil {
		t.Fatalf("echo: %d %s %s", resp.StatusCode, resp.Header, raw)
	}
	id := urlRE.FindStringSubmatch(u)[1]
	rc := ev.RequestContext
	if ev.Version != "2.0" || ev.RawPath != "/some/path" || ev.RawQueryString != "a=1&a=2&b=x%20y" ||
		ev.QueryStringParameters["a"] != "1,2" || ev.QueryStringParameters["b"] != "x y" ||
		strings.Join(ev.Cookies, "|") != "c1=v1|c2=v2" || ev.Headers["x-custom"] != "v" || ev.Headers["cookie"] != "" ||
		ev.Body != "" || ev.IsBase64Encoded || rc.APIID != id || rc.DomainPrefix != id || rc.DomainName != id+".lambda-url.us-east-1.localhost" ||
		rc.AccountID != "000000000000" || rc.HTTP.Method != "GET" || rc.HTTP.Path != "/some/path" || rc.HTTP.SourceIP != "127.0.0.1" ||
		rc.HTTP.UserAgent != "ua/1" || rc.HTTP.Protocol != "HTTP/1.1" || rc.RequestID != resp.Header.Get("X-Amzn-Requestid") || rc.Authorizer != nil {
		t.Errorf("event: %s", raw)
	}
	var loose map[string]any
	_ = json.Unmarshal(raw, &loose)
	authorizer, present := loose["requestContext"].(map[string]any)["authorizer"]
	if !present || authorizer != nil {
		t.Errorf("NONE call: authorizer %v (present %v), want null", authorizer, present)
	}
	if got := ev.Headers["x-amzn-trace-id"]; got != "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1" {
		t.Errorf("the caller's trace: event has %q", got)
	}
	for _, h := range []string{"connection", "upgrade", "proxy-authorization"} {
		if v, ok := ev.Headers[h]; ok {
			t.Errorf("hop-by-hop header %s: %q reached the function", h, v)
		}
	}
	if loose["routeKey"] != "$default" || !regexp.MustCompile(`^\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000$`).MatchString(rc.Time) {
		t.Errorf("routeKey/time: %v %q", loose["routeKey"], rc.Time)
	}

	// A binary body is base64-encoded; a text one is not.
	bin := []byte{0, 1, 2, 0xff, 0xfe, 'x'}
	resp, raw = urlCall(t, d, nil, "POST", u, bin, map[string]string{"Content-Type": "application/octet-stream"})
	ev = events.LambdaFunctionURLRequest{}
	if json.Unmarshal(raw, &ev); resp.StatusCode != 200 || !ev.IsBase64Encoded || ev.Body != base64.StdEncoding.EncodeToString(bin) {
		t.Errorf("binary body: %d %s", resp.StatusCode, raw)
	}
	resp, raw = urlCall(t, d, nil, "POST", u, []byte("héllo"), map[string]string{"Content-Type": "text/plain; charset=utf-8"})
	ev = events.LambdaFunctionURLRequest{}
	if json.Unmarshal(raw, &ev); ev.IsBase64Encoded || ev.Body != "héllo" {
		t.Errorf("text body: %s", raw)
	}

	// A response object: status, headers, cookies and a base64 body as
	// sent; headers a function may not set are renamed, invalid ones dropped.
	out := map[string]any{"statusCode": 201, "headers": map[string]any{"X-Answer": "42", "Content-Type": "image/png",
		"Content-Length": "1", "Connection": "close", "Transfer-Encoding": "chunked", "Bad Name": "x", "X-Split": "a\r\nInjected: 1"},
		"cookies": []string{"s=1; Path=/", "t=2; HttpOnly"}, "body": base64.StdEncoding.EncodeToString(bin), "isBase64Encoded": true}
	resp, raw = urlCall(t, d, nil, "POST", u+"respond", mustJSON(out), map[string]string{"Content-Type": "application/json"})
	h := resp.Header
	if resp.StatusCode != 201 || !bytes.Equal(raw, bin) || h.Get("X-Answer") != "42" || h.Get("Content-Type") != "image/png" ||
		strings.Join(h.Values("Set-Cookie"), "|") != "s=1; Path=/|t=2; HttpOnly" ||
		h.Get("X-Amzn-Remapped-Content-Length") != "1" || h.Get("X-Amzn-Remapped-Connection") != "close" ||
		h.Get("X-Amzn-Remapped-Transfer-Encoding") != "chunked" || resp.Close || h.Get("Injected") != "" || h.Get("X-Split") != "" {
		t.Errorf("response object: %d %v %q", resp.StatusCode, h, raw)
	}
	// Any other JSON is a 200 application/json body, as is.
	for _, v := range []string{`"just a string"`, `[1,2]`, `{"message":"no status"}`, `17`} {
		resp, raw = urlCall(t, d, nil, "POST", u+"respond", []byte(v), map[string]string{"Content-Type": "application/json"})
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || string(raw) != v {
			t.Errorf("result %s: %d %s %s", v, resp.StatusCode, resp.Header.Get("Content-Type"), raw)
		}
	}
	// Errors as Lambda sends them.
	resp, raw = urlCall(t, d, nil, "GET", u+"fail", nil, nil)
	wantURLError(t, "function error", resp, raw, 502, "Internal Server Error")
	for _, status := range []string{"99", "103", "600", `"200"`} {
		resp, raw = urlCall(t, d, nil, "POST", u+"respond", []byte(`{"statusCode":`+status+`}`), map[string]string{"Content-Type": "application/json"})
		wantURLError(t, "status "+status, resp, raw, 502, "Internal Server Error")
	}
	resp, raw = urlCall(t, d, nil, "POST", u, bytes.Repeat([]byte("x"), 6<<20+1), nil)
	if resp.StatusCode != 413 {
		t.Errorf("6 MB + 1 body: %d %.200s", resp.StatusCode, raw)
	}
	getJSON(t, d, "PUT", "/2017-10-31/functions/web/concurrency", map[string]any{"ReservedConcurrentExecutions": 0}, 200, nil)
	resp, raw = urlCall(t, d, nil, "GET", u, nil, nil)
	wantURLError(t, "throttled", resp, raw, 429, "Rate Exceeded.")

	// Host games: an unknown id, another region, no id at all. None says
	// which functions exist.
	other := strings.Replace(u, id, strings.Repeat("a", 32), 1)
	for _, bad := range []string{other, strings.Replace(u, "us-east-1", "eu-west-1", 1), "http://" + d.URLAddr() + "/", strings.Replace(u, id, id+"x", 1)} {
		resp, raw = urlCall(t, d, nil, "GET", bad, nil, nil)
		wantURLError(t, bad, resp, raw, 404, "Not Found")
	}
}

func TestFunctionURLAWSIAM(t *testing.T) {
	d := startURLDaemon(t)
	u := makeURL(t, d, "private", "AWS_IAM", nil)
	resp, raw := urlCall(t, d, nil, "GET", u, nil, nil)
	wantURLError(t, "unsigned", resp, raw, 403, "Forbidden")
	resp, raw = urlCall(t, d, root, "POST", u+"x?q=1", []byte(`{"signed":true}`), map[string]string{"Content-Type": "application/json"})
	var ev events.LambdaFunctionURLRequest
	if json.Unmarshal(raw, &ev); resp.StatusCode != 200 || ev.Body != `{"signed":true}` || ev.RequestContext.Authorizer == nil ||
		ev.RequestContext.Authorizer.IAM.UserARN != "arn:aws:iam::000000000000:root" || ev.RequestContext.Authorizer.IAM.AccessKey != authtest.AccessKeyID {
		t.Errorf("signed by root: %d %s", resp.StatusCode, raw)
	}
	// A tampered body fails the signature.
	req, _ := http.NewRequest("POST", u, strings.NewReader("one"))
	authtest.SignAs(req, *root)
	req.Body, req.ContentLength = io.NopCloser(strings.NewReader("two")), 3
	if r2, err := urlClient(d).Do(req); err != nil || r2.StatusCode != 403 {
		t.Errorf("tampered body: %v %v", r2, err)
	}
	// A user: only with lambda:InvokeFunctionUrl (InvokeFunction is not it).
	invoker := user(t, d, "invoker", "lambda:InvokeFunction")
	resp, raw = urlCall(t, d, invoker, "GET", u, nil, nil)
	wantURLError(t, "user without InvokeFunctionUrl", resp, raw, 403, "Forbidden")
	caller := user(t, d, "caller", "lambda:InvokeFunctionUrl")
	if resp, raw = urlCall(t, d, caller, "GET", u, nil, nil); resp.StatusCode != 200 {
		t.Errorf("user with InvokeFunctionUrl: %d %s", resp.StatusCode, raw)
	}
	// The NONE statement does not open an AWS_IAM URL to anyone.
	allowPublic(t, d, "private")
	resp, raw = urlCall(t, d, invoker, "GET", u, nil, nil)
	wantURLError(t, "NONE statement on an AWS_IAM URL", resp, raw, 403, "Forbidden")
}

func TestFunctionURLCORS(t *testing.T) {
	d := startURLDaemon(t)
	u := makeURL(t, d, "cors", "AWS_IAM", map[string]any{"AllowOrigins": []string{"https://app.example"}, "AllowMethods": []string{"GET", "POST"},
		"AllowHeaders": []string{"x-token"}, "ExposeHeaders": []string{"x-answer"}, "MaxAge": 600, "AllowCredentials": true})
	// A preflight is answered by the URL, unsigned, without the function.
	resp, raw := urlCall(t, d, nil, "OPTIONS", u, nil, map[string]string{"Origin": "https://app.example", "Access-Control-Request-Method": "POST"})
	h := resp.Header
	if resp.StatusCode != 200 || h.Get("Access-Control-Allow-Origin") != "https://app.example" || h.Get("Access-Control-Allow-Methods") != "GET,POST" ||
		h.Get("Access-Control-Allow-Headers") != "x-token" || h.Get("Access-Control-Max-Age") != "600" || h.Get("Access-Control-Allow-Credentials") != "true" {
		t.Errorf("preflight: %d %v %s", resp.StatusCode, h, raw)
	}
	resp, _ = urlCall(t, d, nil, "OPTIONS", u, nil, map[string]string{"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from another origin allowed: %v", resp.Header)
	}
	// An actual call: the URL's CORS headers replace the function's.
	out := map[string]any{"statusCode": 200, "headers": map[string]string{"Access-Control-Allow-Origin": "*", "X-Answer": "1"}, "body": "ok"}
	resp, raw = urlCall(t, d, root, "POST", u+"respond", mustJSON(out), map[string]string{"Origin": "https://app.example", "Content-Type": "application/json"})
	h = resp.Header
	if resp.StatusCode != 200 || string(raw) != "ok" || h.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		h.Get("Access-Control-Expose-Headers") != "x-answer" || h.Get("Vary") != "Origin" {
		t.Errorf("CORS on a call: %d %v %s", resp.StatusCode, h, raw)
	}
}

// A URL on an alias runs the alias, is allowed by the alias's own policy,
// and goes with the alias.
func TestFunctionURLOnAlias(t *testing.T) {
	d := startURLDaemon(t)
	latest := makeURL(t, d, "aliased", "NONE", nil)
	getJSON(t, d, "POST", "/2015-03-31/functions/aliased/aliases", map[string]any{"Name": "live", "FunctionVersion": "$LATEST"}, 201, nil)
	var c urlConfig
	getJSON(t, d, "POST", "/2021-10-31/functions/aliased/url?Qualifier=live", map[string]any{"AuthType": "NONE"}, 201, &c)
	if c.FunctionUrl == latest || c.FunctionArn != "arn:aws:lambda:us-east-1:000000000000:function:aliased:live" {
		t.Fatalf("alias URL: %+v (latest %s)", c, latest)
	}
	// The alias may be named with the function, as Lambda's FunctionName allows.
	var byName urlConfig
	getJSON(t, d, "GET", "/2021-10-31/functions/aliased:live/url", nil, 200, &byName)
	if byName.FunctionUrl != c.FunctionUrl {
		t.Errorf("GET aliased:live: %+v, want the alias's URL %s", byName, c.FunctionUrl)
	}
	if a := call(t, d, root, "GET", "/2021-10-31/functions/aliased:1/url", "", nil); a.status != 400 {
		t.Errorf("a version in the name: %d %s", a.status, a.code)
	}
	// $LATEST's public statement does not open the alias's URL.
	allowPublic(t, d, "aliased")
	resp, raw := urlCall(t, d, nil, "GET", c.FunctionUrl, nil, nil)
	wantURLError(t, "alias URL with $LATEST's statement", resp, raw, 403, "Forbidden")
	getJSON(t, d, "POST", "/2015-03-31/functions/aliased/policy?Qualifier=live", map[string]any{"StatementId": "public", "Action": "lambda:InvokeFunctionUrl",
		"Principal": "*", "FunctionUrlAuthType": "NONE"}, 201, nil)
	var ev events.LambdaFunctionURLRequest
	resp, raw = urlCall(t, d, nil, "GET", c.FunctionUrl, nil, nil)
	if json.Unmarshal(raw, &ev); resp.StatusCode != 200 || ev.RequestContext.APIID != urlRE.FindStringSubmatch(c.FunctionUrl)[1] {
		t.Errorf("alias URL call: %d %s", resp.StatusCode, raw)
	}
	var list struct {
		FunctionUrlConfigs []urlConfig
		NextMarker         string
	}
	getJSON(t, d, "GET", "/2021-10-31/functions/aliased/urls", nil, 200, &list)
	if len(list.FunctionUrlConfigs) != 2 || list.NextMarker != "" {
		t.Errorf("list: %+v", list)
	}
	// One page at a time: both URLs, once each.
	seen := map[string]bool{}
	for marker, pages := "", 0; pages < 3; pages++ {
		list.NextMarker = ""
		getJSON(t, d, "GET", "/2021-10-31/functions/aliased/urls?MaxItems=1&Marker="+marker, nil, 200, &list)
		for _, c := range list.FunctionUrlConfigs {
			seen[c.FunctionUrl] = true
		}
		if marker = list.NextMarker; marker == "" {
			break
		}
	}
	if len(seen) != 2 || !seen[latest] || !seen[c.FunctionUrl] {
		t.Errorf("paged list saw %v", seen)
	}
	if a := call(t, d, root, "GET", "/2021-10-31/functions/aliased/urls?MaxItems=51", "", nil); a.status != 400 {
		t.Errorf("MaxItems 51: %d %s", a.status, a.code)
	}
	getJSON(t, d, "DELETE", "/2015-03-31/functions/aliased/aliases/live", nil, 204, nil)
	resp, raw = urlCall(t, d, nil, "GET", c.FunctionUrl, nil, nil)
	wantURLError(t, "URL of a deleted alias", resp, raw, 404, "Not Found")
	if resp, raw = urlCall(t, d, nil, "GET", latest, nil, nil); resp.StatusCode != 200 {
		t.Errorf("$LATEST URL after the alias went: %d %s", resp.StatusCode, raw)
	}
}

// AddPermission's InvokedViaFunctionUrl limits an InvokeFunction statement
// to calls through a URL: it does not let the principal call Invoke.
func TestInvokedViaFunctionURLStatement(t *testing.T) {
	d := startURLDaemon(t)
	getJSON(t, d, "POST", "/2015-03-31/functions", createBody("f", nil), 201, nil)
	bob := user(t, d, "bob")
	var out struct{ Statement string }
	getJSON(t, d, "POST", "/2015-03-31/functions/f/policy", map[string]any{"StatementId": "via-url", "Action": "lambda:InvokeFunction",
		"Principal": "arn:aws:iam::000000000000:user/bob", "InvokedViaFunctionUrl": true}, 201, &out)
	if !strings.Contains(out.Statement, `"Bool":{"lambda:InvokedViaFunctionUrl":"true"}`) {
		t.Errorf("statement: %s", out.Statement)
	}
	if a := call(t, d, bob, "POST", "/2015-03-31/functions/f/invocations", "", map[string]any{}); a.status != 403 {
		t.Errorf("Invoke under a URL-only statement: %d %s", a.status, a.code)
	}
	getJSON(t, d, "POST", "/2015-03-31/functions/f/policy", map[string]any{"StatementId": "any", "Action": "lambda:InvokeFunction",
		"Principal": "arn:aws:iam::000000000000:user/bob"}, 201, nil)
	if a := call(t, d, bob, "POST", "/2015-03-31/functions/f/invocations", "", map[string]any{}); a.status != 200 {
		t.Errorf("Invoke under a plain statement: %d %s %s", a.status, a.code, a.msg)
	}
}

// rawExchange writes req on a new connection to the URL listener and
// returns everything the server sends until it closes the connection.
func rawExchange(t *testing.T, addr, req string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(c)
	return string(out)
}

// TestFunctionURLHostile: a timeout is Lambda's 502; a request that could
// smuggle another past a proxy ends its connection; oversized headers and
// bodies are refused before the function runs.
func TestFunctionURLHostile(t *testing.T) {
	d := startURLDaemon(t)
	getJSON(t, d, "POST", "/2015-03-31/functions", createBody("slow", map[string]any{"Timeout": 1}), 201, nil)
	var c urlConfig
	getJSON(t, d, "POST", "/2021-10-31/functions/slow/url", map[string]any{"AuthType": "NONE"}, 201, &c)
	allowPublic(t, d, "slow")
	resp, raw := urlCall(t, d, nil, "GET", c.FunctionUrl+"hang", nil, nil)
	wantURLError(t, "timeout", resp, raw, 502, "Internal Server Error")

	host := strings.TrimSuffix(strings.TrimPrefix(c.FunctionUrl, "http://"), "/")
	smuggle := "POST / HTTP/1.1\r\nHost: " + host + "\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" +
		"GET /smuggled HTTP/1.1\r\nHost: " + host + "\r\n\r\n"
	if out := rawExchange(t, d.URLAddr(), smuggle); strings.Count(out, "HTTP/1.1 ") != 1 || strings.Contains(out, "/smuggled") {
		t.Errorf("Content-Length with chunked: want one answer and the connection closed, got:\n%s", out)
	}
	// The API's own listener too: a Content-Length the chunked body
	// overrides ends the connection with the (unauthenticated) answer.
	api := "POST /2015-03-31/functions HTTP/1.1\r\nHost: " + d.Addr() + "\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" +
		"GET /smuggled HTTP/1.1\r\nHost: " + d.Addr() + "\r\n\r\n"
	if out := rawExchange(t, d.Addr(), api); strings.Count(out, "HTTP/1.1 ") != 1 || strings.Contains(out, "/smuggled") {
		t.Errorf("API listener, Content-Length with chunked: want one answer and the connection closed, got:\n%s", out)
	}
	big := "GET / HTTP/1.1\r\nHost: " + host + "\r\nX-Big: " + strings.Repeat("a", 2<<20) + "\r\n\r\n"
	if out := rawExchange(t, d.URLAddr(), big); !strings.HasPrefix(out, "HTTP/1.1 431") {
		t.Errorf("2 MiB of headers: %.100s", out)
	}
	// The metrics count URL calls as invocations of the function: the
	// timed-out one and the chunked POST.
	a, metrics := send(t, d, nil, "GET", "/metrics", nil, nil)
	if a.status != 200 || !strings.Contains(string(metrics), `icebox_invocations_total{function="slow"} 2`) {
		t.Errorf("metrics after one URL call: %d\n%s", a.status, metrics)
	}
}

// TestTerraformFunctionURLReplay replays what terraform-provider-aws's
// aws_lambda_function_url does with aws-sdk-go-v2: create (Cors as the
// provider expands it), the public statement for NONE, read, update of the
// auth type and Cors, import by FUNCTION/QUALIFIER, delete (a second delete
// is the 404 the provider ignores).
func TestTerraformFunctionURLReplay(t *testing.T) {
	d := startURLDaemon(t)
	c := sdkClient(d, root)
	ctx := context.Background()
	createSDK(t, c, "tf", false)
	createAlias(t, c, "tf", "live", "$LATEST")
	for _, q := range []*string{nil, aws.String("live")} {
		created, err := c.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("tf"), Qualifier: q,
			AuthType: types.FunctionUrlAuthTypeNone, Cors: &types.Cors{AllowCredentials: aws.Bool(false), AllowOrigins: []string{"*"}}})
		if err != nil {
			t.Fatalf("create (qualifier %v): %v", aws.ToString(q), err)
		}
		if _, err := c.AddPermission(ctx, &lambda.AddPermissionInput{FunctionName: aws.String("tf"), Qualifier: q, StatementId: aws.String("FunctionURLAllowPublicAccess"),
			Action: aws.String("lambda:InvokeFunctionUrl"), Principal: aws.String("*"), FunctionUrlAuthType: types.FunctionUrlAuthTypeNone}); err != nil {
			t.Fatalf("public statement: %v", err)
		}
		got, err := c.GetFunctionUrlConfig(ctx, &lambda.GetFunctionUrlConfigInput{FunctionName: aws.String("tf"), Qualifier: q})
		if err != nil || aws.ToString(got.FunctionUrl) != aws.ToString(created.FunctionUrl) || got.AuthType != types.FunctionUrlAuthTypeNone ||
			got.Cors == nil || aws.ToBool(got.Cors.AllowCredentials) || got.InvokeMode != types.InvokeModeBuffered {
			t.Fatalf("read: %+v %v", got, err)
		}
		if resp, raw := urlCall(t, d, nil, "GET", aws.ToString(got.FunctionUrl), nil, nil); resp.StatusCode != 200 {
			t.Errorf("call (qualifier %v): %d %s", aws.ToString(q), resp.StatusCode, raw)
		}
		up, err := c.UpdateFunctionUrlConfig(ctx, &lambda.UpdateFunctionUrlConfigInput{FunctionName: aws.String("tf"), Qualifier: q,
			AuthType: types.FunctionUrlAuthTypeAwsIam, Cors: &types.Cors{AllowCredentials: aws.Bool(true), AllowOrigins: []string{"https://a.example"}, MaxAge: aws.Int32(60)}})
		if err != nil || up.AuthType != types.FunctionUrlAuthTypeAwsIam || !aws.ToBool(up.Cors.AllowCredentials) || aws.ToInt32(up.Cors.MaxAge) != 60 {
			t.Fatalf("update: %+v %v", up, err)
		}
	}
	// Import by tf/live reads the alias's URL.
	imported, err := c.GetFunctionUrlConfig(ctx, &lambda.GetFunctionUrlConfigInput{FunctionName: aws.String("tf"), Qualifier: aws.String("live")})
	if err != nil || !strings.HasSuffix(aws.ToString(imported.FunctionArn), ":function:tf:live") {
		t.Fatalf("import: %+v %v", imported, err)
	}
	for _, q := range []*string{nil, aws.String("live")} {
		if _, err := c.DeleteFunctionUrlConfig(ctx, &lambda.DeleteFunctionUrlConfigInput{FunctionName: aws.String("tf"), Qualifier: q}); err != nil {
			t.Fatal(err)
		}
		var nf *types.ResourceNotFoundException
		if _, err := c.DeleteFunctionUrlConfig(ctx, &lambda.DeleteFunctionUrlConfigInput{FunctionName: aws.String("tf"), Qualifier: q}); !errors.As(err, &nf) {
			t.Errorf("second delete: %v, want ResourceNotFoundException", err)
		}
	}
}
