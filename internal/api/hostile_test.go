package api_test

import (
	"encoding/json"
	"net/url"

	"github.com/aws/aws-sdk-go-v2/aws"
	"net/http"
	"strings"
	"testing"
)

// TestMalformedBodiesOnEveryOperation sends each operation, on a function
// and alias that exist, bodies a buggy client might: none, truncated JSON,
// JSON of the wrong shape, wrong types and NaN-like numbers. Every answer is
// a client error of Lambda's kind, never a 5xx.
func TestMalformedBodiesOnEveryOperation(t *testing.T) {
	d := startDaemon(t)
	createSDK(t, sdkClient(d, root), "f", true)
	if a := call(t, d, root, "POST", "/2015-03-31/functions/f/aliases", "", map[string]any{"Name": "live", "FunctionVersion": "1"}); a.status != http.StatusCreated {
		t.Fatalf("create alias: %+v", a)
	}
	bodies := []string{"", "{", "null", "[]", `"s"`, "1e999", `{"Name":5,"FunctionVersion":1,"RoutingConfig":{"AdditionalVersionWeights":{"1":"NaN"}}}`,
		`{"ProvisionedConcurrentExecutions":-1}`, `{"ProvisionedConcurrentExecutions":1e30}`, `{"AuthType":["NONE"],"Cors":"x"}`,
		`{"Content":{"ZipFile":"!!"}}`, `{"CompatibleRuntimes":` + strings.Repeat(`"python3.12",`, 2000) + `"x"]}`,
		`{"StatementId":"s\u0000","Action":"lambda:*","Principal":{"AWS":"*"}}`, `{"Tags":{"":"x"}}`, `{"Timeout":1e3,"MemorySize":-0}`}
	for _, op := range operations() {
		if op.target != "" || op.method == "GET" || op.method == "DELETE" || strings.Contains(op.path, "access-keys") || strings.Contains(op.path, "roles") || strings.Contains(op.path, "networks") {
			continue
		}
		path := strings.ReplaceAll(op.path, "missing", "f")
		for _, b := range bodies {
			a, raw := send(t, d, root, op.method, path, []byte(b), nil)
			if a.status >= 500 || (a.status >= 400 && a.code == "") {
				t.Errorf("%s %s body %.60q: %d %s %s", op.method, path, b, a.status, a.code, raw)
			}
		}
	}
}

// TestAliasOnlyPolicyHoldsAcrossSpellings gives a key InvokeFunction on
// one alias's ARN only, and tries every other way to name the function:
// another version, $LATEST, the bare name, the alias with a qualifier that
// disagrees, partial and full ARNs, case games and trailing parts.
func TestAliasOnlyPolicyHoldsAcrossSpellings(t *testing.T) {
	d := startDaemon(t)
	c := sdkClient(d, root)
	createSDK(t, c, "f", true)
	if a := call(t, d, root, "POST", "/2015-03-31/functions/f/aliases", "", map[string]any{"Name": "live", "FunctionVersion": "1"}); a.status != http.StatusCreated {
		t.Fatalf("create alias: %+v", a)
	}
	const arn = "arn:aws:lambda:us-east-1:000000000000:function:f"
	pol := map[string]any{"Statement": []map[string]any{{"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": arn + ":live"}}}
	a, raw := send(t, d, root, "POST", "/icebox/v1/access-keys", mustJSON(map[string]any{"UserName": "narrow", "Policy": pol}), nil)
	var out struct {
		AccessKey struct{ AccessKeyId, SecretAccessKey string }
	}
	if err := json.Unmarshal(raw, &out); err != nil || a.status != http.StatusCreated {
		t.Fatalf("create key: %d %s", a.status, raw)
	}
	narrow := &aws.Credentials{AccessKeyID: out.AccessKey.AccessKeyId, SecretAccessKey: out.AccessKey.SecretAccessKey}
	esc := url.PathEscape
	at := func(ref, op string) string { // ref may end in ?Qualifier=
		name, q, _ := strings.Cut(ref, "?")
		if q != "" {
			q = "?" + q
		}
		return "/functions/" + name + "/" + op + q
	}
	allowed := []string{"f:live", "f?Qualifier=live", esc(arn + ":live"), esc(arn) + "?Qualifier=live", esc("000000000000:function:f:live")}
	for _, p := range allowed {
		if a, raw := send(t, d, narrow, "POST", "/2015-03-31"+at(p, "invocations"), []byte("{}"), nil); a.status != http.StatusOK {
			t.Errorf("invoke %s: %d %s; want 200", p, a.status, raw)
		}
	}
	for _, p := range []string{"f", "f:1", "f:$LATEST", "f?Qualifier=1", "f?Qualifier=$LATEST", "f:live?Qualifier=1", "f:1?Qualifier=live",
		"f:LIVE", "F:live", "f:live:extra", "f:live%00", esc(arn), esc(arn + ":1"), esc(arn+":live") + "?Qualifier=1", esc("000000000000:function:f:1"),
		esc("arn:aws:lambda:us-east-1:000000000000:function:f:live:1"), esc("arn:aws:lambda:us-east-1:111111111111:function:f:live")} {
		a, raw := send(t, d, narrow, "POST", "/2015-03-31"+at(p, "invocations"), []byte("{}"), nil)
		if a.status == http.StatusOK || a.status >= 500 {
			t.Errorf("invoke %s: %d %s; want a refusal", p, a.status, raw)
		}
		if a, raw := send(t, d, narrow, "POST", "/2021-11-15"+at(p, "response-streaming-invocations"), []byte("{}"), nil); a.status == http.StatusOK || a.status >= 500 {
			t.Errorf("stream %s: %d %s; want a refusal", p, a.status, raw)
		}
	}
	// Its policy names no other action on the alias.
	for _, p := range []string{"/2015-03-31/functions/f:live/policy", "/2015-03-31/functions/f/policy?Qualifier=live", "/2015-03-31/functions/f/aliases/live"} {
		if a, _ := send(t, d, narrow, "GET", p, nil, nil); a.status != http.StatusForbidden {
			t.Errorf("GET %s: %+v; want 403", p, a)
		}
	}
}

// TestFunctionURLCookiesStayOnTheirHost: every URL is a name under
// lambda-url.<region>.localhost, which no browser treats as a public
// suffix (Lambda's on.aws names are), so a cookie a function sets with a
// Domain attribute would reach every other function's URL and the
// console's session cookie name on localhost. The listener drops the
// attribute, wherever the function put the cookie; the rest is kept.
func TestFunctionURLCookiesStayOnTheirHost(t *testing.T) {
	d := startURLDaemon(t)
	u := makeURL(t, d, "toss", "NONE", nil)
	allowPublic(t, d, "toss")
	out := map[string]any{"statusCode": 200, "headers": map[string]any{"Set-Cookie": "h=1; domain=.localhost; Path=/"},
		"cookies": []string{"icebox-console=x; Domain=localhost; Path=/; HttpOnly", "a=2;Domain =lambda-url.us-east-1.localhost", "b=3; Path=/"}}
	resp, raw := urlCall(t, d, nil, "POST", u+"respond", mustJSON(out), map[string]string{"Content-Type": "application/json"})
	got := resp.Header.Values("Set-Cookie")
	want := []string{"h=1; Path=/", "icebox-console=x; Path=/; HttpOnly", "a=2", "b=3; Path=/"}
	if resp.StatusCode != 200 || strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("cookies with a Domain: %d %q %s; want %q", resp.StatusCode, got, raw, want)
	}
}
