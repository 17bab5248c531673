package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"

	"icebox/internal/auth/authtest"
	"icebox/internal/daemon"
)

// rootCall sends a signed JSON request to icebox's own API and decodes the answer.
func (s *server) rootCall(method, path string, in, out any) int {
	s.t.Helper()
	b, _ := json.Marshal(in)
	req, _ := http.NewRequest(method, s.url+path, bytes.NewReader(b))
	resp, err := signingClient().Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			s.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, body)
		}
	}
	return resp.StatusCode
}

// userClient creates an access key for user with policy and returns an SDK
// client signing with it.
func (s *server) userClient(user, policy string) (*lambda.Client, aws.Credentials) {
	s.t.Helper()
	var out struct {
		AccessKey struct{ AccessKeyId, SecretAccessKey string }
	}
	if code := s.rootCall("POST", "/icebox/v1/access-keys", map[string]any{"UserName": user, "Policy": json.RawMessage(policy)}, &out); code != 201 {
		s.t.Fatalf("create access key: %d %+v", code, out)
	}
	creds := aws.Credentials{AccessKeyID: out.AccessKey.AccessKeyId, SecretAccessKey: out.AccessKey.SecretAccessKey}
	return s.clientWith(creds), creds
}

func (s *server) clientWith(c aws.Credentials) *lambda.Client {
	return lambda.New(lambda.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.url), Retryer: aws.NopRetryer{},
		Credentials: credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)})
}

// apiError asserts err is an AWS error with code and a message containing msg.
func apiError(t *testing.T, what string, err error, code, msg string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != code || !strings.Contains(ae.ErrorMessage(), msg) {
		t.Errorf("%s: got %v, want %s containing %q", what, err, code, msg)
	}
}

func TestSigV4Negatives(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	s.create("f")
	_, err := s.clientWith(aws.Credentials{AccessKeyID: authtest.AccessKeyID, SecretAccessKey: "wrong"}).GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("f")})
	apiError(t, "wrong secret", err, "InvalidSignatureException", "does not match the signature you provided")
	_, err = s.clientWith(aws.Credentials{AccessKeyID: "AKIAUNKNOWNUNKNOWN00", SecretAccessKey: "x"}).GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("f")})
	apiError(t, "unknown key", err, "UnrecognizedClientException", "security token included in the request is invalid")

	// Raw requests: unsigned, tampered after signing, signed 6 minutes ago.
	raw := func(sign func(*http.Request)) (int, string, string) {
		req, _ := http.NewRequest("POST", s.url+"/2015-03-31/functions/f/invocations", strings.NewReader(`{}`))
		req.Header.Set("X-Amz-Invocation-Type", "RequestResponse")
		sign(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"), string(b)
	}
	signAt := func(req *http.Request, at time.Time) {
		body, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
		creds := aws.Credentials{AccessKeyID: authtest.AccessKeyID, SecretAccessKey: authtest.SecretAccessKey}
		if err := v4.NewSigner().SignHTTP(ctx, creds, req, sha256Hex(body), "lambda", "us-east-1", at); err != nil {
			t.Fatal(err)
		}
	}
	for name, tc := range map[string]struct {
		sign       func(*http.Request)
		code, body string
	}{
		"unsigned": {func(*http.Request) {}, "MissingAuthenticationTokenException", "Missing Authentication Token"},
		"tampered header": {func(r *http.Request) {
			signAt(r, time.Now())
			r.Header.Set("X-Amz-Invocation-Type", "Event")
		}, "InvalidSignatureException", "does not match"},
		"tampered body": {func(r *http.Request) {
			signAt(r, time.Now())
			r.Body = io.NopCloser(strings.NewReader(`{"x":1}`))
			r.ContentLength = 7
		}, "InvalidSignatureException", "does not match"},
		"skew over 5 minutes": {func(r *http.Request) { signAt(r, time.Now().Add(-6*time.Minute)) }, "InvalidSignatureException", "Signature expired"},
	} {
		status, code, body := raw(tc.sign)
		if status != 403 || code != tc.code || !strings.Contains(body, tc.body) {
			t.Errorf("%s: %d %s %s, want 403 %s containing %q", name, status, code, body, tc.code, tc.body)
		}
	}

	// The AWS CLI with a wrong secret gets the same refusal.
	if aws, err := exec.LookPath("aws"); err == nil {
		cmd := exec.Command(aws, "--endpoint-url", s.url, "lambda", "get-function", "--function-name", "f")
		cmd.Env = append(clientEnv(t), "AWS_SECRET_ACCESS_KEY=wrong")
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "InvalidSignatureException") {
			t.Errorf("aws cli with a wrong secret: %v %s", err, out)
		}
	}
	// A presigned URL works without headers, and only for what was signed.
	presigned := func(path string, at time.Time) string {
		req, _ := http.NewRequest("GET", s.url+path+"?X-Amz-Expires=60", nil)
		creds := aws.Credentials{AccessKeyID: authtest.AccessKeyID, SecretAccessKey: authtest.SecretAccessKey}
		u, _, err := v4.NewSigner().PresignHTTP(ctx, creds, req, "UNSIGNED-PAYLOAD", "lambda", "us-east-1", at)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	get := func(u string) (int, string) {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("x-amzn-ErrorType")
	}
	if code, et := get(presigned("/2015-03-31/functions/f", time.Now())); code != 200 {
		t.Errorf("presigned GetFunction: %d %s", code, et)
	}
	if code, et := get(strings.Replace(presigned("/2015-03-31/functions/f", time.Now()), "/functions/f?", "/functions/g?", 1)); code != 403 || et != "InvalidSignatureException" {
		t.Errorf("presigned URL used for another function: %d %s", code, et)
	}
	if code, et := get(presigned("/2015-03-31/functions/f", time.Now().Add(-2*time.Minute))); code != 403 || et != "InvalidSignatureException" {
		t.Errorf("presigned URL replayed after it expired: %d %s", code, et)
	}
	// GetFunction's code URL works unsigned with its token, and only so.
	gf, err := s.client.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("f")})
	if err != nil {
		t.Fatal(err)
	}
	loc := aws.ToString(gf.Code.Location)
	base, _, _ := strings.Cut(loc, "?")
	if code, et := get(loc); code != 200 {
		t.Errorf("code URL: %d %s", code, et)
	}
	for _, u := range []string{base, base + "?token=", base + "?token=1.AAAA", strings.Replace(loc, "/functions/f/", "/functions/g/", 1)} {
		if code, _ := get(u); code != 403 && code != 404 {
			t.Errorf("code URL %s: %d, want it refused", u, code)
		}
	}
	if code, et := get(base + "?token="); code != 403 || et != "MissingAuthenticationTokenException" {
		t.Errorf("code URL with an empty token: %d %s", code, et)
	}
	if code, et := get(base + "?token=1.AAAA"); code != 403 || et != "AccessDeniedException" {
		t.Errorf("code URL with a forged token: %d %s", code, et)
	}
	// /metrics stays open unless --metrics-auth.
	if resp, err := http.Get(s.url + "/metrics"); err != nil || resp.StatusCode != 200 {
		t.Errorf("/metrics: %v", err)
	}
}

func TestMetricsAuth(t *testing.T) {
	s := startServer(t, func(c *daemon.Config) { c.MetricsAuth = true })
	resp, err := http.Get(s.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 || resp.Header.Get("x-amzn-ErrorType") != "MissingAuthenticationTokenException" {
		t.Errorf("unsigned /metrics with --metrics-auth: %d", resp.StatusCode)
	}
	if resp, err := signingClient().Get(s.url + "/metrics"); err != nil || resp.StatusCode != 200 {
		t.Errorf("signed /metrics: %v %v", resp.StatusCode, err)
	}
}

func TestIdentityPolicies(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := context.Background()
	for _, n := range []string{"pub-1", "pub-secret", "private"} {
		s.create(n)
	}
	alice, _ := s.userClient("alice", `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":["lambda:InvokeFunction","lambda:Get*"],"Resource":"arn:aws:lambda:us-east-1:000000000000:function:pub-*"},
		{"Effect":"Deny","Action":"lambda:*","Resource":"arn:aws:lambda:*:*:function:pub-secret"}]}`)
	if _, err := alice.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("pub-1"), Payload: []byte(`{}`)}); err != nil {
		t.Errorf("allowed invoke: %v", err)
	}
	if _, err := alice.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("pub-1")}); err != nil {
		t.Errorf("allowed Get*: %v", err)
	}
	_, err := alice.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("private")})
	apiError(t, "invoke outside the policy", err, "AccessDeniedException",
		"User: arn:aws:iam::000000000000:user/alice is not authorized to perform: lambda:InvokeFunction on resource: "+testArnBase+"private")
	_, err = alice.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("pub-secret")})
	apiError(t, "explicit deny", err, "AccessDeniedException", "with an explicit deny")
	_, err = alice.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("pub-1")})
	apiError(t, "delete", err, "AccessDeniedException", "lambda:DeleteFunction")
	if _, err := s.client.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("pub-1")}); err != nil {
		t.Errorf("the refused delete deleted: %v", err)
	}
	_, err = alice.ListFunctions(ctx, &lambda.ListFunctionsInput{})
	apiError(t, "list", err, "AccessDeniedException", "lambda:ListFunctions on resource: *")

	// The Logs API refuses the same way, in its own shape.
	logsClient := cloudwatchlogs.New(cloudwatchlogs.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.url), Retryer: aws.NopRetryer{},
		Credentials: alice.Options().Credentials})
	_, err = logsClient.FilterLogEvents(ctx, &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String("/aws/lambda/pub-1")})
	apiError(t, "logs", err, "AccessDeniedException", "logs:FilterLogEvents")

	// A bad policy is refused and makes no key.
	var bad map[string]string
	if code := s.rootCall("POST", "/icebox/v1/access-keys", map[string]any{"UserName": "bob", "Policy": json.RawMessage(`{"Statement":[{"Effect":"Perhaps","Action":"lambda:*","Resource":"*"}]}`)}, &bad); code != 400 || !strings.Contains(bad["message"], "Effect must be Allow or Deny") {
		t.Errorf("bad policy: %d %v", code, bad)
	}
	var keys struct {
		AccessKeys []struct{ UserName, SecretAccessKey string }
	}
	s.rootCall("GET", "/icebox/v1/access-keys", nil, &keys)
	if len(keys.AccessKeys) != 1 || keys.AccessKeys[0].UserName != "alice" || keys.AccessKeys[0].SecretAccessKey != "" {
		t.Errorf("keys listed: %+v", keys)
	}
	// A user without icebox:* cannot make keys.
	_, aliceCreds := s.userClient("alice2", `{"Statement":[{"Effect":"Allow","Action":"lambda:*","Resource":"*"}]}`)
	b, _ := json.Marshal(map[string]any{"UserName": "mallory", "Policy": json.RawMessage(`{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`)})
	req, _ := http.NewRequest("POST", s.url+"/icebox/v1/access-keys", bytes.NewReader(b))
	if err := v4.NewSigner().SignHTTP(ctx, aliceCreds, req, sha256Hex(b), "lambda", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 403 || resp.Header.Get("x-amzn-ErrorType") != "AccessDeniedException" {
		t.Errorf("a lambda:* user made an access key: %v %v", resp.StatusCode, err)
	}
}

func TestResourcePolicyWithBoto3(t *testing.T) {
	run := boto3(t)
	s := startServer(t)
	ctx := context.Background()
	s.create("shared")
	bob, _ := s.userClient("bob", `{"Statement":[{"Effect":"Allow","Action":"lambda:GetAccountSettings","Resource":"*"}]}`)
	_, err := bob.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("shared")})
	apiError(t, "before AddPermission", err, "AccessDeniedException", "lambda:InvokeFunction")

	script := `
import boto3, json, sys
from botocore.exceptions import ClientError
c = boto3.client("lambda", endpoint_url=sys.argv[1], region_name="us-east-1")
def err(f):
    try:
        f()
    except ClientError as e:
        return [e.response["Error"]["Code"], e.response["Error"]["Message"], e.response["ResponseMetadata"]["HTTPStatusCode"]]
out = {}
out["none"] = err(lambda: c.get_policy(FunctionName="shared"))
r = c.add_permission(FunctionName="shared", StatementId="bob-invoke", Action="lambda:InvokeFunction", Principal="arn:aws:iam::000000000000:user/bob")
out["add_status"] = r["ResponseMetadata"]["HTTPStatusCode"]
out["statement"] = json.loads(r["Statement"])
c.add_permission(FunctionName="shared", StatementId="s3", Action="lambda:InvokeFunction", Principal="s3.amazonaws.com", SourceArn="arn:aws:s3:::bucket")
out["dup"] = err(lambda: c.add_permission(FunctionName="shared", StatementId="s3", Action="lambda:InvokeFunction", Principal="s3.amazonaws.com"))
out["policy"] = json.loads(c.get_policy(FunctionName="shared")["Policy"])
out["remove_missing"] = err(lambda: c.remove_permission(FunctionName="shared", StatementId="nope"))
out["bad_action"] = err(lambda: c.add_permission(FunctionName="shared", StatementId="x", Action="s3:GetObject", Principal="*"))
json.dump(out, sys.stdout)
`
	raw := run("-c", script, s.url)
	var out struct {
		None, Dup     []any
		RemoveMissing []any `json:"remove_missing"`
		BadAction     []any `json:"bad_action"`
		AddStatus     int   `json:"add_status"`
		Statement     map[string]any
		Policy        struct {
			Version   string
			Statement []map[string]any
		}
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	check := func(what string, got []any, code string, status float64) {
		if len(got) != 3 || got[0] != code || got[2] != status {
			t.Errorf("%s: %v, want %s %v", what, got, code, status)
		}
	}
	check("get_policy without one", out.None, "ResourceNotFoundException", 404)
	check("duplicate sid", out.Dup, "ResourceConflictException", 409)
	check("remove a missing sid", out.RemoveMissing, "ResourceNotFoundException", 404)
	check("add_permission with an s3 action", out.BadAction, "InvalidParameterValueException", 400)
	if out.AddStatus != 201 || out.Statement["Sid"] != "bob-invoke" || out.Statement["Resource"] != testArnBase+"shared" {
		t.Errorf("add_permission: %d %v", out.AddStatus, out.Statement)
	}
	if len(out.Policy.Statement) != 2 || out.Policy.Version != "2012-10-17" {
		t.Errorf("get_policy: %+v", out.Policy)
	} else if p, _ := json.Marshal(out.Policy.Statement[1]); !strings.Contains(string(p), `"Service":"s3.amazonaws.com"`) || !strings.Contains(string(p), `"AWS:SourceArn":"arn:aws:s3:::bucket"`) {
		t.Errorf("service statement: %s", p)
	}
	// The resource policy lets bob invoke, and only invoke, this function.
	if _, err := bob.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("shared"), Payload: []byte(`{}`)}); err != nil {
		t.Errorf("invoke granted by the resource policy: %v", err)
	}
	_, err = bob.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("shared")})
	apiError(t, "get function", err, "AccessDeniedException", "lambda:GetFunction")
	if _, err := s.client.RemovePermission(ctx, &lambda.RemovePermissionInput{FunctionName: aws.String("shared"), StatementId: aws.String("bob-invoke")}); err != nil {
		t.Fatal(err)
	}
	_, err = bob.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("shared")})
	apiError(t, "after RemovePermission", err, "AccessDeniedException", "lambda:InvokeFunction")
}

// TestExecutionRole: a function's SDK, configured by nothing but Lambda's
// environment, calls icebox inside its sandbox with exactly its role's rights.
func TestExecutionRole(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := context.Background()
	s.create("callee")
	s.create("other")
	if code := s.rootCall("PUT", "/icebox/v1/roles/caller-role", map[string]any{"Policy": json.RawMessage(
		`{"Statement":[{"Effect":"Allow","Action":"lambda:InvokeFunction","Resource":"` + testArnBase + `callee"}]}`)}, nil); code != 200 {
		t.Fatalf("put role: %d", code)
	}
	caller := programZip(t, "caller")
	for name, role := range map[string]string{"caller": "caller-role", "norole": "undefined-role"} {
		s.create(name, func(in *lambda.CreateFunctionInput) {
			in.Code.ZipFile, in.Role, in.Timeout = caller, aws.String("arn:aws:iam::000000000000:role/service-role/"+role), aws.Int32(10)
		})
	}
	type report struct{ Payload, ErrorCode, Message, AccessKeyID, Endpoint string }
	call := func(fn, target string) report {
		t.Helper()
		out, err := s.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(fn), Payload: []byte(`{"target":"` + target + `"}`), LogType: "Tail"})
		if err != nil || out.FunctionError != nil {
			t.Fatalf("invoke %s: %v %s", fn, err, out.Payload)
		}
		var r report
		json.Unmarshal(out.Payload, &r)
		return r
	}
	r := call("caller", "callee")
	if r.ErrorCode != "" || !strings.Contains(r.Payload, `"functionArn":"`+testArnBase+`callee"`) {
		t.Errorf("caller → callee: %+v", r)
	}
	if !strings.HasPrefix(r.AccessKeyID, "ASIA") || r.AccessKeyID == authtest.AccessKeyID || r.Endpoint != "http://127.0.0.1:9070" {
		t.Errorf("environment credentials: %+v", r)
	}
	r = call("caller", "other")
	if r.ErrorCode != "AccessDeniedException" || !strings.Contains(r.Message, "assumed-role/caller-role/caller is not authorized to perform: lambda:InvokeFunction on resource: "+testArnBase+"other") {
		t.Errorf("caller → other: %+v", r)
	}
	if r = call("norole", "callee"); r.ErrorCode != "AccessDeniedException" {
		t.Errorf("undefined role → callee: %+v", r)
	}
	// Deleting the role takes the right away from running environments.
	s.rootCall("DELETE", "/icebox/v1/roles/caller-role", nil, nil)
	if r = call("caller", "callee"); r.ErrorCode != "AccessDeniedException" {
		t.Errorf("after the role is deleted: %+v", r)
	}
	// The server's root secret is in no function log.
	logs := cloudwatchlogs.New(cloudwatchlogs.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.url), Credentials: rootCredentials})
	for _, g := range []string{"caller", "norole", "callee"} {
		out, err := logs.FilterLogEvents(ctx, &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String("/aws/lambda/" + g)})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range out.Events {
			if strings.Contains(aws.ToString(e.Message), authtest.SecretAccessKey) {
				t.Errorf("root secret in the log of %s", g)
			}
		}
	}
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// putRole defines an execution role as root.
func (s *server) putRole(name, policy string) {
	s.t.Helper()
	if code := s.rootCall("PUT", "/icebox/v1/roles/"+name, map[string]any{"Policy": json.RawMessage(policy)}, nil); code != 200 {
		s.t.Fatalf("put role %s: %d", name, code)
	}
}

const roleBase = "arn:aws:iam::000000000000:role/"

// TestPassRole: naming a function's role hands that role's rights to code
// the caller controls, so CreateFunction and UpdateFunctionConfiguration
// need iam:PassRole on it in the caller's identity policy, as in IAM.
func TestPassRole(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := context.Background()
	s.putRole("admin", `{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`)
	for _, r := range []string{"bob-worker", "bob-other"} {
		s.putRole(r, `{"Statement":[{"Effect":"Allow","Action":"lambda:InvokeFunction","Resource":"`+testArnBase+`bob-*"}]}`)
	}
	create := func(c *lambda.Client, name, role string) error {
		_, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String(name), Runtime: types.RuntimeProvidedal2023,
			Handler: aws.String("bootstrap"), Role: aws.String(role), Code: &types.FunctionCode{ZipFile: functionZip(t)}})
		return err
	}
	absent := func(name string) {
		t.Helper()
		if _, err := s.client.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(name)}); errorCode(err) != "ResourceNotFoundException" {
			t.Errorf("a refused create made %s: %v", name, err)
		}
	}
	// The reported attack: lambda:* on its own functions, and a function
	// created with the admin role.
	bob, _ := s.userClient("bob", `{"Statement":[{"Effect":"Allow","Action":"lambda:*","Resource":"`+testArnBase+`bob-*"}]}`)
	apiError(t, "create with a role bob may not pass", create(bob, "bob-fn", roleBase+"admin"), "AccessDeniedException",
		"User: arn:aws:iam::000000000000:user/bob is not authorized to perform: iam:PassRole on resource: "+roleBase+"admin because no identity-based policy allows the iam:PassRole action")
	absent("bob-fn")

	// With iam:PassRole on bob-* roles (conditioned on the service, the way
	// IAM's examples write it), bob2 passes those and nothing else.
	bob2, _ := s.userClient("bob2", `{"Statement":[
		{"Effect":"Allow","Action":"lambda:*","Resource":"`+testArnBase+`bob-*"},
		{"Effect":"Allow","Action":"iam:PassRole","Resource":["`+roleBase+`bob-*","arn:aws:iam::999999999999:role/*"],
		 "Condition":{"StringEquals":{"iam:PassedToService":"lambda.amazonaws.com"}}}]}`)
	if err := create(bob2, "bob-fn", roleBase+"bob-worker"); err != nil {
		t.Fatalf("create with a role bob2 may pass: %v", err)
	}
	if err := create(bob2, "bob-path", roleBase+"service-role/bob-worker"); err != nil {
		t.Errorf("create with a path before a role bob2 may pass: %v", err)
	}
	// A function runs as the role of that name in this account: neither a
	// path nor another account in the ARN makes admin another role.
	for _, role := range []string{roleBase + "bob-x/admin", "arn:aws:iam::999999999999:role/admin"} {
		apiError(t, "create with "+role, create(bob2, "bob-fn2", role), "AccessDeniedException",
			"user/bob2 is not authorized to perform: iam:PassRole on resource: "+roleBase+"admin")
	}
	absent("bob-fn2")
	eve, _ := s.userClient("eve", `{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},
		{"Effect":"Deny","Action":"iam:PassRole","Resource":"`+roleBase+`admin"}]}`)
	apiError(t, "create against an explicit deny", create(eve, "eve-fn", roleBase+"admin"), "AccessDeniedException",
		"iam:PassRole on resource: "+roleBase+"admin with an explicit deny")
	absent("eve-fn")

	// UpdateFunctionConfiguration checks a Role whenever one is given (as
	// Lambda does), before anything is changed.
	update := func(c *lambda.Client, role, desc *string) error {
		_, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("bob-fn"), Role: role, Description: desc})
		return err
	}
	apiError(t, "bob2 updates to admin", update(bob2, aws.String(roleBase+"admin"), aws.String("pwned")), "AccessDeniedException",
		"user/bob2 is not authorized to perform: iam:PassRole on resource: "+roleBase+"admin")
	apiError(t, "bob updates to admin", update(bob, aws.String(roleBase+"admin"), aws.String("pwned")), "AccessDeniedException",
		"user/bob is not authorized to perform: iam:PassRole on resource: "+roleBase+"admin")
	apiError(t, "bob names the role it has", update(bob, aws.String(roleBase+"bob-worker"), nil), "AccessDeniedException",
		"iam:PassRole on resource: "+roleBase+"bob-worker")
	if err := update(bob, nil, aws.String("no role given")); err != nil {
		t.Errorf("update without a role: %v", err)
	}
	if err := update(bob2, aws.String(roleBase+"bob-other"), nil); err != nil {
		t.Errorf("bob2 updates to a role it may pass: %v", err)
	}
	cfg, err := s.client.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("bob-fn")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(cfg.Role) != roleBase+"bob-other" || aws.ToString(cfg.Description) != "no role given" {
		t.Errorf("after the updates: role %s, description %q", aws.ToString(cfg.Role), aws.ToString(cfg.Description))
	}
}

// signedCall sends a JSON request signed with creds (a session token
// included) and returns the status, error type and body.
func (s *server) signedCall(creds aws.Credentials, method, path string, in any) (int, string, string) {
	s.t.Helper()
	var b []byte
	if in != nil {
		b, _ = json.Marshal(in)
	}
	req, _ := http.NewRequest(method, s.url+path, bytes.NewReader(b))
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, sha256Hex(b), "lambda", "us-east-1", time.Now()); err != nil {
		s.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"), string(body)
}

// TestRoleCredentialsCannotAdminister: a function's credentials, taken
// out of its sandbox, are worth exactly its role's policy; icebox's own
// key and role API refuses them unless the role grants its actions.
func TestRoleCredentialsCannotAdminister(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	s.putRole("invoker", `{"Statement":[{"Effect":"Allow","Action":"lambda:InvokeFunction","Resource":"*"}]}`)
	s.putRole("key-lister", `{"Statement":[{"Effect":"Allow","Action":"icebox:ListAccessKeys","Resource":"*"}]}`)
	stolen := func(fn, role string) aws.Credentials {
		t.Helper()
		s.create(fn, func(in *lambda.CreateFunctionInput) { in.Role = aws.String(roleBase + role) })
		env := s.call(fn, map[string]string{}).Env
		c := aws.Credentials{AccessKeyID: env["AWS_ACCESS_KEY_ID"], SecretAccessKey: env["AWS_SECRET_ACCESS_KEY"], SessionToken: env["AWS_SESSION_TOKEN"]}
		if !strings.HasPrefix(c.AccessKeyID, "ASIA") || c.SessionToken == "" {
			t.Fatalf("%s has no role credentials: %+v", fn, c)
		}
		return c
	}
	creds := stolen("victim", "invoker")
	// The credentials work for what the role grants...
	if _, err := s.clientWith(creds).Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("victim"), Payload: []byte(`{}`)}); err != nil {
		t.Fatalf("invoke with the role's credentials: %v", err)
	}
	// ...and for nothing of icebox's own API.
	admin := `{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`
	for _, c := range []struct{ method, path, action string }{
		{"POST", "/icebox/v1/access-keys", "icebox:CreateAccessKey"},
		{"PUT", "/icebox/v1/roles/invoker", "icebox:PutRole"},
		{"GET", "/icebox/v1/access-keys", "icebox:ListAccessKeys"},
		{"GET", "/icebox/v1/roles", "icebox:ListRoles"},
	} {
		status, code, body := s.signedCall(creds, c.method, c.path, map[string]any{"UserName": "mallory", "Policy": json.RawMessage(admin)})
		if status != 403 || code != "AccessDeniedException" ||
			!strings.Contains(body, "assumed-role/invoker/victim is not authorized to perform: "+c.action) {
			t.Errorf("%s %s with role credentials: %d %s %s", c.method, c.path, status, code, body)
		}
	}
	var keys struct{ AccessKeys []any }
	s.rootCall("GET", "/icebox/v1/access-keys", nil, &keys)
	var roles struct{ Roles []json.RawMessage }
	s.rootCall("GET", "/icebox/v1/roles", nil, &roles)
	if all := fmt.Sprintf("%s", roles.Roles); len(keys.AccessKeys) != 0 || len(roles.Roles) != 2 || strings.Contains(all, `"Action":"*"`) {
		t.Errorf("refused calls changed identities: keys %v roles %s", keys.AccessKeys, all)
	}
	// A role whose policy grants an icebox action may use it.
	if status, code, body := s.signedCall(stolen("lister", "key-lister"), "GET", "/icebox/v1/access-keys", nil); status != 200 {
		t.Errorf("ListAccessKeys granted by the role: %d %s %s", status, code, body)
	}
}
