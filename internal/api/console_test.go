package api_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"icebox/internal/auth/authtest"
	"icebox/internal/console"
	"icebox/internal/daemon"
	"icebox/internal/sandbox/sandboxtest"
)

// consoleSession is a signed-in console: its cookie and CSRF token.
type consoleSession struct {
	cookie *http.Cookie
	csrf   string
}

// signInRequest is a console sign-in request signed with creds. Its body
// is unique, as the console's is: two sign-ins in one second would
// otherwise carry the same signature.
func signInRequest(t *testing.T, d *daemon.Daemon, creds *aws.Credentials) *http.Request {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+d.Addr()+"/console/api/sign-in", strings.NewReader(`{"nonce":"`+rand.Text()+`"}`))
	if err := authtest.SignAs(req, *creds); err != nil {
		t.Fatal(err)
	}
	return req
}

func do(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp, raw
}

func signIn(t *testing.T, d *daemon.Daemon, creds *aws.Credentials) consoleSession {
	t.Helper()
	resp, raw := do(t, signInRequest(t, d, creds))
	var info struct {
		SignedIn bool
		User     string
		CSRF     string
	}
	_ = json.Unmarshal(raw, &info)
	var ck *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == console.CookieName {
			ck = c
		}
	}
	if resp.StatusCode != 200 || !info.SignedIn || info.CSRF == "" || ck == nil {
		t.Fatalf("sign in: %d %s", resp.StatusCode, raw)
	}
	if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.MaxAge <= 0 || ck.MaxAge > 3600 {
		t.Errorf("session cookie %+v: want HttpOnly, SameSite=Strict, at most an hour", ck)
	}
	return consoleSession{cookie: ck, csrf: info.CSRF}
}

// consoleCall makes an API call as the console does: the session cookie
// and the CSRF header, no signature.
func consoleCall(t *testing.T, d *daemon.Daemon, s consoleSession, method, path, body string, header map[string]string) answer {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+d.Addr()+path, strings.NewReader(body))
	if s.cookie != nil {
		req.AddCookie(s.cookie)
	}
	if s.csrf != "" {
		req.Header.Set(console.CSRFHeader, s.csrf)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, raw := do(t, req)
	return answerOf(resp, raw)
}

// TestConsolePage: the console is served on the API's port without a
// build step, under a strict Content-Security-Policy, and cannot be framed.
func TestConsolePage(t *testing.T) {
	d := startDaemon(t)
	for _, path := range []string{"/console/", "/console/console.js", "/console/uPlot.iife.min.js"} {
		resp, raw := do(t, must(http.NewRequest("GET", "http://"+d.Addr()+path, nil)))
		csp := resp.Header.Get("Content-Security-Policy")
		if resp.StatusCode != 200 || len(raw) == 0 || !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "script-src 'self'") ||
			strings.Contains(csp, "unsafe") || resp.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("GET %s: %d, CSP %q, X-Frame-Options %q", path, resp.StatusCode, csp, resp.Header.Get("X-Frame-Options"))
		}
	}
	resp, _ := do(t, must(http.NewRequest("GET", "http://"+d.Addr()+"/console", nil)))
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/console/" {
		t.Errorf("GET /console: %d at %s, want the page at /console/", resp.StatusCode, resp.Request.URL.Path)
	}
}

func must(r *http.Request, err error) *http.Request {
	if err != nil {
		panic(err)
	}
	return r
}

// TestConsoleSession: a console signs in with a SigV4-signed request, and
// its calls then go through the API's own authorization; the attacks on a
// cookie session fail: no CSRF header, a forged or signed-out cookie, a
// deleted key's cookie, a replayed or unsigned sign-in, a cookie renewing
// itself.
func TestConsoleSession(t *testing.T) {
	d := startDaemon(t)
	const list = "/2015-03-31/functions"
	rootSession := signIn(t, d, root)
	if got := consoleCall(t, d, rootSession, "GET", list, "", nil); got.status != 200 {
		t.Errorf("root's console lists functions: %d %s %s", got.status, got.code, got.msg)
	}
	if got := consoleCall(t, d, rootSession, "GET", "/icebox/v1/status", "", nil); got.status != 200 {
		t.Errorf("root's console reads the status: %d %s %s", got.status, got.code, got.msg)
	}

	// A narrow key's console may do what its policy allows, nothing else.
	narrow := user(t, d, "viewer", "lambda:ListFunctions")
	s := signIn(t, d, narrow)
	if got := consoleCall(t, d, s, "GET", list, "", nil); got.status != 200 {
		t.Errorf("narrow console lists functions: %d %s %s", got.status, got.code, got.msg)
	}
	if got := consoleCall(t, d, s, "GET", "/icebox/v1/status", "", nil); got.code != "AccessDeniedException" || !strings.Contains(got.msg, "icebox:GetStatus") {
		t.Errorf("narrow console reads the status: %d %s %s, want AccessDenied", got.status, got.code, got.msg)
	}

	// Attacks on the session.
	noCSRF := consoleSession{cookie: s.cookie}
	if got := consoleCall(t, d, noCSRF, "GET", list, "", nil); got.code != "AccessDeniedException" || !strings.Contains(got.msg, console.CSRFHeader) {
		t.Errorf("without the CSRF header: %d %s %s", got.status, got.code, got.msg)
	}
	otherCSRF := consoleSession{cookie: s.cookie, csrf: rootSession.csrf}
	if got := consoleCall(t, d, otherCSRF, "GET", list, "", nil); got.code != "AccessDeniedException" {
		t.Errorf("with another session's CSRF token: %d %s %s", got.status, got.code, got.msg)
	}
	forged := consoleSession{cookie: &http.Cookie{Name: console.CookieName, Value: "A" + rootSession.cookie.Value[1:]}, csrf: rootSession.csrf}
	if got := consoleCall(t, d, forged, "GET", list, "", nil); got.code != "UnrecognizedClientException" {
		t.Errorf("forged cookie: %d %s %s", got.status, got.code, got.msg)
	}
	if got := consoleCall(t, d, consoleSession{}, "GET", list, "", nil); got.code != "MissingAuthenticationTokenException" {
		t.Errorf("no cookie: %d %s %s", got.status, got.code, got.msg)
	}

	// A signed sign-in request counts once.
	req := signInRequest(t, d, narrow)
	body, _ := io.ReadAll(req.Body)
	if resp, raw := do(t, req); resp.StatusCode != 200 {
		t.Fatalf("sign in: %d %s", resp.StatusCode, raw)
	}
	replay, _ := http.NewRequest("POST", req.URL.String(), bytes.NewReader(body))
	replay.Header = req.Header.Clone()
	if resp, raw := do(t, replay); resp.StatusCode != 403 || !strings.Contains(string(raw), "already used") {
		t.Errorf("replayed sign-in: %d %s", resp.StatusCode, raw)
	}
	// A sign-in needs a signature: a cookie does not renew itself.
	renew, _ := http.NewRequest("POST", "http://"+d.Addr()+"/console/api/sign-in", strings.NewReader("{}"))
	renew.AddCookie(s.cookie)
	renew.Header.Set(console.CSRFHeader, s.csrf)
	if resp, raw := do(t, renew); resp.StatusCode != 403 || resp.Header.Get("X-Amzn-ErrorType") != "MissingAuthenticationTokenException" {
		t.Errorf("sign-in with a cookie: %d %s", resp.StatusCode, raw)
	}

	// Signing out ends the session (it needs the CSRF token: another site
	// cannot sign a user out).
	out := func(csrf string) int {
		req, _ := http.NewRequest("POST", "http://"+d.Addr()+"/console/api/sign-out", nil)
		req.AddCookie(rootSession.cookie)
		if csrf != "" {
			req.Header.Set(console.CSRFHeader, csrf)
		}
		resp, _ := do(t, req)
		return resp.StatusCode
	}
	if code := out(""); code != 403 {
		t.Errorf("sign-out without the CSRF token: %d, want 403", code)
	}
	if code := out(rootSession.csrf); code != 204 {
		t.Errorf("sign-out: %d, want 204", code)
	}
	if got := consoleCall(t, d, rootSession, "GET", list, "", nil); got.code != "ExpiredTokenException" {
		t.Errorf("after sign-out: %d %s %s", got.status, got.code, got.msg)
	}

	// A deleted key's session ends at once.
	if a, raw := send(t, d, root, "DELETE", "/icebox/v1/access-keys/"+narrow.AccessKeyID, nil, nil); a.status/100 != 2 {
		t.Fatalf("delete key: %d %s", a.status, raw)
	}
	if got := consoleCall(t, d, s, "GET", list, "", nil); got.code != "UnrecognizedClientException" {
		t.Errorf("deleted key's session: %d %s %s", got.status, got.code, got.msg)
	}
}

// TestConsoleWithoutAuth: with --no-auth the console needs no sign-in (the
// API takes unsigned calls anyway), and has none to offer.
func TestConsoleWithoutAuth(t *testing.T) {
	cfg := daemon.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), ShutdownTimeout: 5 * time.Second, NoAuth: true,
		RootAccessKeyID: authtest.AccessKeyID, RootSecretAccessKey: authtest.SecretAccessKey, Sandboxes: &sandboxtest.Factory{}}
	d, err := daemon.Start(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Shutdown() })
	_, raw := do(t, must(http.NewRequest("GET", "http://"+d.Addr()+"/console/api/session", nil)))
	var info struct{ SignedIn, NoAuth bool }
	if err := json.Unmarshal(raw, &info); err != nil || !info.SignedIn || !info.NoAuth {
		t.Errorf("session without auth: %s", raw)
	}
	if got := consoleCall(t, d, consoleSession{}, "GET", "/2015-03-31/functions", "", nil); got.status != 200 {
		t.Errorf("console call without auth: %d %s", got.status, got.code)
	}
	if resp, _ := do(t, signInRequest(t, d, root)); resp.StatusCode != 404 {
		t.Errorf("sign-in without auth: %d, want 404", resp.StatusCode)
	}
}
