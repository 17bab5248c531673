package auth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/nats-io/nats.go/jetstream"

	"icebox/internal/engine/enginetest"
	"icebox/internal/errdefs"
	"icebox/internal/policy"
	"icebox/internal/testkit"
)

const (
	rootID     = "AKIAROOTROOTROOTROOT"
	rootSecret = "rootsecretrootsecretrootsecretrootsecret"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func open(t *testing.T) (*Authority, *clock) {
	t.Helper()
	c := &clock{t: time.Now()}
	e := enginetest.Embedded(t)
	a, err := Open(context.Background(), Config{Region: "us-east-1", AccountID: "000000000000", RootAccessKeyID: rootID, RootSecretAccessKey: rootSecret, Now: c.now}, e.JetStream(), enginetest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return a, c
}

func hash(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// signed builds a request as a client would send it, signed with the SDK.
func signed(t *testing.T, creds aws.Credentials, method, path string, body []byte, at time.Time) *http.Request {
	t.Helper()
	r := httptest.NewRequest(method, "http://127.0.0.1:9070"+path, bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-Amz-Invocation-Type", "RequestResponse")
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, r, hash(body), "lambda", "us-east-1", at); err != nil {
		t.Fatal(err)
	}
	return r
}

func authKind(err error) errdefs.AuthKind {
	var ae *errdefs.AuthError
	if !errors.As(err, &ae) {
		return -1
	}
	return ae.Kind
}

func TestAuthenticateHeader(t *testing.T) {
	a, c := open(t)
	root := aws.Credentials{AccessKeyID: rootID, SecretAccessKey: rootSecret}
	body := []byte(`{"a":1}`)
	path := "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Af/invocations"

	id, err := a.Authenticate(signed(t, root, "POST", path, body, c.t), hash(body))
	if err != nil || !id.Root || id.ARN != "arn:aws:iam::000000000000:root" {
		t.Fatalf("root: %+v, %v", id, err)
	}

	cases := map[string]struct {
		req  func() *http.Request
		hash string
		kind errdefs.AuthKind
		msg  string
	}{
		"unsigned": {func() *http.Request { return httptest.NewRequest("GET", "/2015-03-31/functions", nil) }, hash(nil), errdefs.AuthMissing, "Missing Authentication Token"},
		"unknown key": {func() *http.Request {
			return signed(t, aws.Credentials{AccessKeyID: "AKIANOBODY", SecretAccessKey: rootSecret}, "POST", path, body, c.t)
		}, hash(body), errdefs.AuthUnknownKey, "security token included in the request is invalid"},
		"wrong secret": {func() *http.Request {
			return signed(t, aws.Credentials{AccessKeyID: rootID, SecretAccessKey: "wrong"}, "POST", path, body, c.t)
		}, hash(body), errdefs.AuthBadSignature, "does not match"},
		"tampered header": {func() *http.Request {
			r := signed(t, root, "POST", path, body, c.t)
			r.Header.Set("X-Amz-Invocation-Type", "Event")
			return r
		}, hash(body), errdefs.AuthBadSignature, "does not match"},
		"tampered body": {func() *http.Request { return signed(t, root, "POST", path, body, c.t) }, hash([]byte(`{"a":2}`)), errdefs.AuthBadSignature, "does not match"},
		"tampered path": {func() *http.Request {
			r := signed(t, root, "POST", path, body, c.t)
			r.URL.Path, r.URL.RawPath = "/2015-03-31/functions/g/invocations", ""
			return r
		}, hash(body), errdefs.AuthBadSignature, "does not match"},
		"skew past":   {func() *http.Request { return signed(t, root, "POST", path, body, c.t.Add(-6*time.Minute)) }, hash(body), errdefs.AuthBadSignature, "Signature expired"},
		"skew future": {func() *http.Request { return signed(t, root, "POST", path, body, c.t.Add(6*time.Minute)) }, hash(body), errdefs.AuthBadSignature, "Signature not yet current"},
		"other region": {func() *http.Request {
			r := httptest.NewRequest("GET", "/2015-03-31/functions", nil)
			_ = v4.NewSigner().SignHTTP(context.Background(), root, r, hash(nil), "lambda", "eu-west-1", c.t)
			return r
		}, hash(nil), errdefs.AuthBadSignature, "valid region"},
		"garbage header": {func() *http.Request {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Authorization", "AWS4-HMAC-SHA256 nonsense")
			return r
		}, hash(nil), errdefs.AuthIncomplete, "Credential"},
	}
	for name, tc := range cases {
		_, err := a.Authenticate(tc.req(), tc.hash)
		if authKind(err) != tc.kind || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: got %v (kind %d), want kind %d containing %q", name, err, authKind(err), tc.kind, tc.msg)
		}
		if err != nil && strings.Contains(err.Error(), rootSecret) {
			t.Errorf("%s: the error shows the secret", name)
		}
	}
	// Within the allowed skew is fine.
	if _, err := a.Authenticate(signed(t, root, "POST", path, body, c.t.Add(-4*time.Minute)), hash(body)); err != nil {
		t.Errorf("4 minutes of skew refused: %v", err)
	}
}

func TestAuthenticatePresigned(t *testing.T) {
	a, c := open(t)
	root := aws.Credentials{AccessKeyID: rootID, SecretAccessKey: rootSecret}
	presign := func(at time.Time, expires string) string {
		r := httptest.NewRequest("GET", "http://127.0.0.1:9070/2015-03-31/functions/f?X-Amz-Expires="+expires, nil)
		u, _, err := v4.NewSigner().PresignHTTP(context.Background(), root, r, "UNSIGNED-PAYLOAD", "lambda", "us-east-1", at)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	u := presign(c.t, "60")
	if _, err := a.Authenticate(httptest.NewRequest("GET", u, nil), hash(nil)); err != nil {
		t.Fatalf("presigned: %v", err)
	}
	tampered := strings.Replace(u, "/functions/f?", "/functions/g?", 1)
	if _, err := a.Authenticate(httptest.NewRequest("GET", tampered, nil), hash(nil)); authKind(err) != errdefs.AuthBadSignature {
		t.Errorf("tampered presigned URL: %v", err)
	}
	c.t = c.t.Add(61 * time.Second)
	if _, err := a.Authenticate(httptest.NewRequest("GET", u, nil), hash(nil)); authKind(err) != errdefs.AuthBadSignature || !strings.Contains(err.Error(), "expired") {
		t.Errorf("replayed after expiry: %v", err)
	}
}

func TestAccessKeysAndSessions(t *testing.T) {
	a, c := open(t)
	ctx := context.Background()
	doc, err := policy.Parse([]byte(`{"Statement":[{"Effect":"Allow","Action":"lambda:InvokeFunction","Resource":"*"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	ak, err := a.CreateAccessKey(ctx, "alice", doc)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ak.AccessKeyID, "AKIA") || len(ak.AccessKeyID) != 20 || len(ak.SecretAccessKey) != 40 {
		t.Fatalf("key shape: %+v", ak)
	}
	creds := aws.Credentials{AccessKeyID: ak.AccessKeyID, SecretAccessKey: ak.SecretAccessKey}
	id, err := a.Authenticate(signed(t, creds, "GET", "/2015-03-31/functions", nil, c.t), hash(nil))
	if err != nil || id.Root || id.ARN != "arn:aws:iam::000000000000:user/alice" || len(id.Policies) != 1 {
		t.Fatalf("alice: %+v %v", id, err)
	}
	for _, k := range a.ListAccessKeys() {
		if k.SecretAccessKey != "" {
			t.Fatal("ListAccessKeys shows a secret")
		}
	}
	if _, err := a.CreateAccessKey(ctx, "bad name!", doc); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("bad user name: %v", err)
	}
	if err := a.DeleteAccessKey(ctx, ak.AccessKeyID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(signed(t, creds, "GET", "/2015-03-31/functions", nil, c.t), hash(nil)); authKind(err) != errdefs.AuthUnknownKey {
		t.Errorf("deleted key still works: %v", err)
	}
	if err := a.DeleteAccessKey(ctx, ak.AccessKeyID); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}

	// Session credentials carry the role's policy, read at call time.
	sc, err := a.SessionCredentials("arn:aws:iam::000000000000:role/service-role/worker", "fn")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(sc.AccessKeyID, "ASIA") || sc.SessionToken == "" {
		t.Fatalf("session shape: %+v", sc)
	}
	screds := aws.Credentials{AccessKeyID: sc.AccessKeyID, SecretAccessKey: sc.SecretAccessKey, SessionToken: sc.SessionToken}
	id, err = a.Authenticate(signed(t, screds, "GET", "/2015-03-31/functions", nil, c.t), hash(nil))
	if err != nil || id.ARN != "arn:aws:sts::000000000000:assumed-role/worker/fn" || len(id.Policies) != 0 {
		t.Fatalf("undefined role: %+v %v", id, err)
	}
	if _, err := a.PutRole(ctx, "worker", doc); err != nil {
		t.Fatal(err)
	}
	if id, err = a.Authenticate(signed(t, screds, "GET", "/2015-03-31/functions", nil, c.t), hash(nil)); err != nil || len(id.Policies) != 1 {
		t.Fatalf("defined role: %+v %v", id, err)
	}
	// A token for another key id, or altered, is refused.
	other := screds
	other.SessionToken = strings.Replace(sc.SessionToken, ".", "x.", 1)
	if _, err := a.Authenticate(signed(t, other, "GET", "/2015-03-31/functions", nil, c.t), hash(nil)); authKind(err) != errdefs.AuthUnknownKey {
		t.Errorf("altered token: %v", err)
	}
	c.t = c.t.Add(13 * time.Hour)
	if _, err := a.Authenticate(signed(t, screds, "GET", "/2015-03-31/functions", nil, c.t), hash(nil)); authKind(err) != errdefs.AuthExpiredToken {
		t.Errorf("expired session: %v", err)
	}
	if _, err := a.SessionCredentials("arn:aws:lambda:us-east-1:000000000000:function:f", "fn"); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("non-role ARN: %v", err)
	}
}

func TestIdentitiesSurviveRestartAndSync(t *testing.T) {
	e := enginetest.Embedded(t)
	ctx := context.Background()
	cfg := Config{Region: "us-east-1", AccountID: "000000000000", RootAccessKeyID: rootID, RootSecretAccessKey: rootSecret}
	a1, err := Open(ctx, cfg, e.JetStream(), enginetest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer a1.Close()
	a2, err := Open(ctx, cfg, e.JetStream(), enginetest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer a2.Close()
	doc := policy.Document{Statement: []policy.Statement{{Effect: policy.Allow, Action: policy.Values{"lambda:*"}, Resource: policy.Values{"*"}}}}
	ak, err := a1.CreateAccessKey(ctx, "bob", doc)
	if err != nil {
		t.Fatal(err)
	}
	// The other node learns the key through the watch; its session tokens
	// are accepted by the first node.
	testkit.WaitFor(t, 5*time.Second, "the second node to see the key", func() bool {
		_, _, err := a2.lookup(&signature{AccessKeyID: ak.AccessKeyID})
		return err == nil
	})
	sc, err := a2.SessionCredentials("arn:aws:iam::000000000000:role/r", "fn")
	if err != nil {
		t.Fatal(err)
	}
	if _, secret, err := a1.session(sc.AccessKeyID, sc.SessionToken); err != nil || secret != sc.SecretAccessKey {
		t.Fatalf("first node refuses the second's token: %v", err)
	}
}

func TestRootCredentialsFile(t *testing.T) {
	dir := t.TempDir()
	id, secret, created, err := LoadOrCreateRoot(dir)
	if err != nil || !created || !strings.HasPrefix(id, "AKIA") || len(secret) != 40 {
		t.Fatalf("create: %s %v %v", id, created, err)
	}
	fi, err := os.Stat(filepath.Join(dir, RootCredentialsFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode: %v %v", fi.Mode(), err)
	}
	id2, secret2, created, err := LoadOrCreateRoot(dir)
	if err != nil || created || id2 != id || secret2 != secret {
		t.Fatalf("reload: %v %v", created, err)
	}
}

func FuzzParseSignature(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=AKIA/20260101/us-east-1/lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc", "20260101T000000Z", "")
	f.Add("", "", "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=A%2F20260101%2Fus-east-1%2Flambda%2Faws4_request&X-Amz-Date=20260101T000000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=00")
	a := &Authority{cfg: Config{Region: "us-east-1", AccountID: "000000000000", RootAccessKeyID: rootID, RootSecretAccessKey: rootSecret, Now: time.Now}, signer: v4.NewSigner(), keys: map[string]AccessKey{}, roles: map[string]Role{}}
	f.Fuzz(func(t *testing.T, authz, date, query string) {
		r := httptest.NewRequest("GET", "/x", nil)
		r.URL.RawQuery = query
		if authz != "" {
			r.Header.Set("Authorization", authz)
		}
		if date != "" {
			r.Header.Set("X-Amz-Date", date)
		}
		id, err := a.Authenticate(r, hash(nil))
		if err == nil {
			t.Fatalf("fuzzed request authenticated as %+v", id)
		}
		if !errors.Is(err, errdefs.ErrAuth) {
			t.Fatalf("unclassified error %v", err)
		}
	})
}

// BenchmarkAuthenticate is the per-call cost of checking a signed Invoke
// (header form, root and an access key with a policy).
func BenchmarkAuthenticate(b *testing.B) {
	e := enginetest.Embedded(b)
	a, err := Open(context.Background(), Config{Region: "us-east-1", AccountID: "000000000000", RootAccessKeyID: rootID, RootSecretAccessKey: rootSecret}, e.JetStream(), enginetest.Logger(b))
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	body := []byte(`{"hello":"world"}`)
	r := httptest.NewRequest("POST", "http://127.0.0.1:9070/2015-03-31/functions/bench/invocations", bytes.NewReader(body))
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: rootID, SecretAccessKey: rootSecret}, r, hash(body), "lambda", "us-east-1", time.Now()); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := a.Authenticate(r, hash(body)); err != nil {
			b.Fatal(err)
		}
	}
}

// staleEntry is a watch event delivered late.
type staleEntry struct {
	jetstream.KeyValueEntry
	key   string
	value []byte
	rev   uint64
}

func (e staleEntry) Key() string                     { return e.key }
func (e staleEntry) Value() []byte                   { return e.value }
func (e staleEntry) Revision() uint64                { return e.rev }
func (e staleEntry) Operation() jetstream.KeyValueOp { return jetstream.KeyValuePut }

// TestLateWatchEventsDoNotResurrect: a watch event that arrives after a
// local delete or a newer local write cannot undo it: a revoked key stays
// revoked, a role keeps its newest policy.
func TestLateWatchEventsDoNotResurrect(t *testing.T) {
	a, _ := open(t)
	ctx := context.Background()
	doc := func(action string) policy.Document {
		d, err := policy.Parse([]byte(`{"Statement":[{"Effect":"Allow","Action":"` + action + `","Resource":"*"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	ak, err := a.CreateAccessKey(ctx, "mallory", doc("lambda:*"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := a.kv.Get(ctx, keyPrefix+ak.AccessKeyID)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.DeleteAccessKey(ctx, ak.AccessKeyID); err != nil {
		t.Fatal(err)
	}
	a.observe(staleEntry{key: e.Key(), value: e.Value(), rev: e.Revision()})
	if _, _, err := a.lookup(&signature{AccessKeyID: ak.AccessKeyID}); authKind(err) != errdefs.AuthUnknownKey {
		t.Errorf("a deleted key came back from a late watch event: %v", err)
	}

	if _, err := a.PutRole(ctx, "r", doc("lambda:InvokeFunction")); err != nil {
		t.Fatal(err)
	}
	old, err := a.kv.Get(ctx, rolePrefix+"r")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.PutRole(ctx, "r", doc("lambda:GetFunction")); err != nil {
		t.Fatal(err)
	}
	a.observe(staleEntry{key: old.Key(), value: old.Value(), rev: old.Revision()})
	if got := a.ListRoles(); len(got) != 1 || got[0].Policy.Statement[0].Action[0] != "lambda:GetFunction" {
		t.Errorf("a late watch event brought back an older role policy: %+v", got)
	}
}
