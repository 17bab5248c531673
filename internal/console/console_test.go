package console

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"icebox/internal/auth"
	"icebox/internal/errdefs"
)

// fakeSessions issues one token and resolves it to root.
type fakeSessions struct{}

func (fakeSessions) ConsoleToken(id string, ttl time.Duration) (string, string, time.Time) {
	return "token-" + id, "csrf-" + id, time.Now().Add(ttl)
}

func (fakeSessions) ConsoleIdentity(token string) (auth.Identity, string, time.Time, error) {
	return auth.Identity{ARN: "arn:aws:iam::000000000000:root", Root: true}, "csrf-" + token[len("token-"):], time.Now().Add(time.Hour), nil
}

func signInRequest(signature string) *http.Request {
	r := httptest.NewRequest("POST", "/console/api/sign-in", nil)
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIA/20260101/us-east-1/lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature="+signature)
	return r
}

// TestSignIn: temporary credentials (a function's role) do not sign in; a
// signed sign-in counts once, until SigV4's clock check would refuse it
// anyway; the session cookie is HttpOnly and SameSite=Strict.
func TestSignIn(t *testing.T) {
	now := time.Now()
	c := New(Config{Region: "us-east-1", Now: func() time.Time { return now }}, fakeSessions{})
	var ae *errdefs.AuthError

	err := c.SignIn(httptest.NewRecorder(), signInRequest("aa"), auth.Identity{ARN: "arn:aws:sts::000000000000:assumed-role/r/f"})
	if !errors.As(err, &ae) || ae.Kind != errdefs.AuthDenied {
		t.Errorf("role session signs in: %v", err)
	}
	w := httptest.NewRecorder()
	if err := c.SignIn(w, signInRequest("bb"), auth.Identity{AccessKeyID: "AKIAUSER", ARN: "arn:aws:iam::000000000000:user/u"}); err != nil {
		t.Fatal(err)
	}
	ck := w.Result().Cookies()
	if len(ck) != 1 || ck[0].Name != CookieName || !ck[0].HttpOnly || ck[0].SameSite != http.SameSiteStrictMode || ck[0].Value != "token-AKIAUSER" {
		t.Errorf("cookie %+v", ck)
	}
	if w.Header().Get("Content-Security-Policy") == "" {
		t.Error("sign-in answer without a Content-Security-Policy")
	}
	if err := c.SignIn(httptest.NewRecorder(), signInRequest("bb"), auth.Identity{AccessKeyID: "AKIAUSER"}); !errors.As(err, &ae) || ae.Kind != errdefs.AuthBadSignature {
		t.Errorf("replayed sign-in: %v", err)
	}
	if err := c.SignIn(httptest.NewRecorder(), signInRequest(""), auth.Identity{AccessKeyID: "AKIAUSER"}); err == nil {
		t.Error("a sign-in without a signature in its Authorization header was accepted")
	}
	now = now.Add(2*auth.MaxSkew + 2*time.Minute)
	if err := c.SignIn(httptest.NewRecorder(), signInRequest("cc"), auth.Identity{AccessKeyID: "AKIAUSER"}); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	_, kept := c.used["bb"]
	c.mu.Unlock()
	if kept {
		t.Error("a sign-in signature is remembered past the time SigV4 would accept it")
	}
}
