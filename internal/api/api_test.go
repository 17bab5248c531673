package api_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"icebox/internal/auth/authtest"
	"icebox/internal/daemon"
	"icebox/internal/sandbox/sandboxtest"
)

// These tests run the whole daemon (embedded engine, real API, real pool)
// with fake sandboxes, so they need no privilege: every operation's error
// mapping and authorization is checked by an ordinary `go test`.

func startDaemon(t *testing.T) *daemon.Daemon {
	t.Helper()
	cfg := daemon.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), ShutdownTimeout: 5 * time.Second,
		RootAccessKeyID: authtest.AccessKeyID, RootSecretAccessKey: authtest.SecretAccessKey, Sandboxes: &sandboxtest.Factory{}}
	d, err := daemon.Start(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Shutdown() })
	return d
}

// answer is an AWS error response, or a success's status.
type answer struct {
	status int
	code   string // x-amzn-ErrorType (or the Logs API's __type)
	msg    string
}

// send sends body as given, signed with creds (nil: unsigned), and
// returns the answer and the response body.
func send(t *testing.T, d *daemon.Daemon, creds *aws.Credentials, method, path string, body []byte, header map[string]string) (answer, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+d.Addr()+path, bytes.NewReader(body))
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if creds != nil {
		if err := authtest.SignAs(req, *creds); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return answerOf(resp, raw), raw
}

// answerOf is the status, error type and message of an API response.
func answerOf(resp *http.Response, raw []byte) answer {
	a := answer{status: resp.StatusCode, code: resp.Header.Get("X-Amzn-ErrorType")}
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	for _, k := range []string{"message", "Message"} {
		if s, ok := m[k].(string); ok {
			a.msg = s
		}
	}
	return a
}

// call sends body as JSON (a CloudWatch Logs call when target is set).
func call(t *testing.T, d *daemon.Daemon, creds *aws.Credentials, method, path, target string, body any) answer {
	t.Helper()
	var b []byte
	if body != nil {
		b, _ = json.Marshal(body)
	}
	var header map[string]string
	if target != "" {
		header = map[string]string{"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"}
	}
	a, _ := send(t, d, creds, method, path, b, header)
	return a
}

var root = &aws.Credentials{AccessKeyID: authtest.AccessKeyID, SecretAccessKey: authtest.SecretAccessKey}

// user makes an access key whose one policy allows actions on every
// resource (and an action of another service, so that it is never empty).
func user(t *testing.T, d *daemon.Daemon, name string, actions ...string) *aws.Credentials {
	t.Helper()
	policy := map[string]any{"Statement": []map[string]any{{"Effect": "Allow", "Action": append([]string{"sqs:ListQueues"}, actions...), "Resource": "*"}}}
	req, _ := json.Marshal(map[string]any{"UserName": name, "Policy": policy})
	a, raw := send(t, d, root, "POST", "/icebox/v1/access-keys", req, nil)
	var out struct {
		AccessKey struct{ AccessKeyId, SecretAccessKey string }
	}
	if err := json.Unmarshal(raw, &out); err != nil || a.status != http.StatusCreated {
		t.Fatalf("create key for %s: %d %s", name, a.status, raw)
	}
	return &aws.Credentials{AccessKeyID: out.AccessKey.AccessKeyId, SecretAccessKey: out.AccessKey.SecretAccessKey}
}

func codeZip() string {
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	f, _ := w.Create("bootstrap")
	f.Write([]byte("#!/bin/sh\n"))
	w.Close()
	return base64.StdEncoding.EncodeToString(b.Bytes())
}

// An operation of the API, and what root gets for it here: functions are
// named "missing" (never created) unless the operation makes one.
type operation struct {
	action       string
	method, path string
	target       string // CloudWatch Logs operations
	body         any
	status       int
	code         string
}

var somePolicy = map[string]any{"Statement": []any{map[string]any{"Effect": "Allow", "Action": "lambda:GetFunction", "Resource": "*"}}}

// alsoNeeds lists the actions an operation needs beyond its own.
var alsoNeeds = map[string][]string{"lambda:CreateFunction": {"iam:PassRole"}}

func operations() []operation {
	const fn, eic = "/2015-03-31/functions", "/2019-09-25/functions/missing/event-invoke-config"
	const layer = "/2018-10-31/layer"
	// The SDKs escape the ARN in a tags path.
	tags := "/2017-03-31/tags/" + url.PathEscape("arn:aws:lambda:us-east-1:000000000000:function:missing")
	const notFound = "ResourceNotFoundException"
	create := map[string]any{"FunctionName": "made", "Runtime": "provided.al2023", "Handler": "bootstrap",
		"Role": "arn:aws:iam::000000000000:role/r", "Code": map[string]string{"ZipFile": codeZip()}}
	logs := func(op string, body any, status int, code string) operation {
		return operation{action: "logs:" + op, method: "POST", path: "/", target: "Logs_20140328." + op, body: body, status: status, code: code}
	}
	return []operation{
		{"lambda:CreateFunction", "POST", fn, "", create, 201, ""},
		{"lambda:ListFunctions", "GET", fn, "", nil, 200, ""},
		{"lambda:GetFunction", "GET", fn + "/missing", "", nil, 404, notFound},
		{"lambda:DeleteFunction", "DELETE", fn + "/missing", "", nil, 404, notFound},
		{"lambda:GetFunctionConfiguration", "GET", fn + "/missing/configuration", "", nil, 404, notFound},
		{"lambda:UpdateFunctionConfiguration", "PUT", fn + "/missing/configuration", "", map[string]any{"Timeout": 5}, 404, notFound},
		{"lambda:UpdateFunctionCode", "PUT", fn + "/missing/code", "", map[string]any{"ZipFile": codeZip()}, 404, notFound},
		{"lambda:InvokeFunction", "POST", fn + "/missing/invocations", "", map[string]any{}, 404, notFound},
		{"lambda:InvokeFunction", "POST", "/2021-11-15/functions/missing/response-streaming-invocations", "", map[string]any{}, 404, notFound},
		{"lambda:AddPermission", "POST", fn + "/missing/policy", "", map[string]any{"StatementId": "s", "Action": "lambda:InvokeFunction", "Principal": "*"}, 404, notFound},
		{"lambda:GetPolicy", "GET", fn + "/missing/policy", "", nil, 404, notFound},
		{"lambda:RemovePermission", "DELETE", fn + "/missing/policy/s", "", nil, 404, notFound},
		{"lambda:PutFunctionConcurrency", "PUT", "/2017-10-31/functions/missing/concurrency", "", map[string]any{"ReservedConcurrentExecutions": 1}, 404, notFound},
		{"lambda:DeleteFunctionConcurrency", "DELETE", "/2017-10-31/functions/missing/concurrency", "", nil, 404, notFound},
		{"lambda:GetFunctionConcurrency", "GET", "/2019-09-30/functions/missing/concurrency", "", nil, 404, notFound},
		{"lambda:GetAccountSettings", "GET", "/2016-08-19/account-settings", "", nil, 200, ""},
		{"lambda:TagResource", "POST", tags, "", map[string]any{"Tags": map[string]string{"team": "a"}}, 404, notFound},
		{"lambda:UntagResource", "DELETE", tags + "?tagKeys=team", "", nil, 404, notFound},
		{"lambda:ListTags", "GET", tags, "", nil, 404, notFound},
		{"lambda:GetFunctionCodeSigningConfig", "GET", "/2020-06-30/functions/missing/code-signing-config", "", nil, 404, notFound},
		{"lambda:GetRuntimeManagementConfig", "GET", "/2021-07-20/functions/missing/runtime-management-config", "", nil, 404, notFound},
		{"lambda:GetFunctionRecursionConfig", "GET", "/2024-08-31/functions/missing/recursion-config", "", nil, 404, notFound},
		{"lambda:ListFunctionUrlConfigs", "GET", "/2021-10-31/functions/missing/urls", "", nil, 404, notFound},
		{"lambda:CreateFunctionUrlConfig", "POST", "/2021-10-31/functions/missing/url", "", map[string]any{"AuthType": "NONE"}, 404, notFound},
		{"lambda:GetFunctionUrlConfig", "GET", "/2021-10-31/functions/missing/url", "", nil, 404, notFound},
		{"lambda:UpdateFunctionUrlConfig", "PUT", "/2021-10-31/functions/missing/url", "", map[string]any{"AuthType": "NONE"}, 404, notFound},
		{"lambda:DeleteFunctionUrlConfig", "DELETE", "/2021-10-31/functions/missing/url", "", nil, 404, notFound},
		{"lambda:ListVersionsByFunction", "GET", fn + "/missing/versions", "", nil, 404, notFound},
		{"lambda:ListAliases", "GET", fn + "/missing/aliases", "", nil, 404, notFound},
		{"lambda:PublishVersion", "POST", fn + "/missing/versions", "", map[string]any{}, 404, notFound},
		{"lambda:CreateAlias", "POST", fn + "/missing/aliases", "", map[string]any{"Name": "live", "FunctionVersion": "1"}, 404, notFound},
		{"lambda:GetAlias", "GET", fn + "/missing/aliases/live", "", nil, 404, notFound},
		{"lambda:UpdateAlias", "PUT", fn + "/missing/aliases/live", "", map[string]any{"FunctionVersion": "1"}, 404, notFound},
		{"lambda:DeleteAlias", "DELETE", fn + "/missing/aliases/live", "", nil, 404, notFound},
		{"lambda:ListEventSourceMappings", "GET", "/2015-03-31/event-source-mappings/", "", nil, 200, ""},
		{"lambda:ListProvisionedConcurrencyConfigs", "GET", "/2019-09-30/functions/missing/provisioned-concurrency?List=ALL", "", nil, 404, notFound},
		{"lambda:GetProvisionedConcurrencyConfig", "GET", "/2019-09-30/functions/missing/provisioned-concurrency?Qualifier=1", "", nil, 404, notFound},
		{"lambda:PutProvisionedConcurrencyConfig", "PUT", "/2019-09-30/functions/missing/provisioned-concurrency?Qualifier=1", "", map[string]any{"ProvisionedConcurrentExecutions": 1}, 404, notFound},
		{"lambda:DeleteProvisionedConcurrencyConfig", "DELETE", "/2019-09-30/functions/missing/provisioned-concurrency?Qualifier=1", "", nil, 404, notFound},
		{"lambda:PutFunctionEventInvokeConfig", "PUT", eic, "", map[string]any{"MaximumRetryAttempts": 1}, 404, notFound},
		{"lambda:UpdateFunctionEventInvokeConfig", "POST", eic, "", map[string]any{"MaximumRetryAttempts": 1}, 404, notFound},
		{"lambda:GetFunctionEventInvokeConfig", "GET", eic, "", nil, 404, notFound},
		{"lambda:DeleteFunctionEventInvokeConfig", "DELETE", eic, "", nil, 404, notFound},
		{"lambda:ListFunctionEventInvokeConfigs", "GET", eic + "/list", "", nil, 404, notFound},
		{"lambda:GetFunction", "GET", "/icebox/v1/functions/missing/code", "", nil, 404, notFound},
		{"lambda:PublishLayerVersion", "POST", layer + "s/made/versions", "", map[string]any{"Content": map[string]string{"ZipFile": codeZip()}}, 201, ""},
		{"lambda:ListLayers", "GET", layer + "s", "", nil, 200, ""},
		{"lambda:GetLayerVersion", "GET", layer + "s?find=LayerVersion&Arn=arn:aws:lambda:us-east-1:000000000000:layer:missing:1", "", nil, 404, notFound},
		{"lambda:ListLayerVersions", "GET", layer + "s/missing/versions", "", nil, 200, ""},
		{"lambda:GetLayerVersion", "GET", layer + "s/missing/versions/1", "", nil, 404, notFound},
		{"lambda:DeleteLayerVersion", "DELETE", layer + "s/missing/versions/1", "", nil, 204, ""},
		{"lambda:AddLayerVersionPermission", "POST", layer + "s/missing/versions/1/policy", "", map[string]any{"StatementId": "s", "Action": "lambda:GetLayerVersion", "Principal": "*"}, 404, notFound},
		{"lambda:GetLayerVersionPolicy", "GET", layer + "s/missing/versions/1/policy", "", nil, 404, notFound},
		{"lambda:RemoveLayerVersionPermission", "DELETE", layer + "s/missing/versions/1/policy/s", "", nil, 404, notFound},
		{"lambda:GetLayerVersion", "GET", "/icebox/v1/layers/missing/versions/1/content", "", nil, 404, notFound},
		{"icebox:GetStatus", "GET", "/icebox/v1/status", "", nil, 200, ""},
		{"icebox:CreateAccessKey", "POST", "/icebox/v1/access-keys", "", map[string]any{"UserName": "u", "Policy": somePolicy}, 201, ""},
		{"icebox:ListAccessKeys", "GET", "/icebox/v1/access-keys", "", nil, 200, ""},
		{"icebox:DeleteAccessKey", "DELETE", "/icebox/v1/access-keys/AKIAMISSING", "", nil, 404, notFound},
		{"icebox:PutRole", "PUT", "/icebox/v1/roles/r", "", map[string]any{"Policy": somePolicy}, 200, ""},
		{"icebox:ListRoles", "GET", "/icebox/v1/roles", "", nil, 200, ""},
		{"icebox:DeleteRole", "DELETE", "/icebox/v1/roles/missing", "", nil, 404, notFound},
		{"icebox:PutNetwork", "PUT", "/icebox/v1/networks/n", "", map[string]any{"Cidrs": []string{"10.1.0.0/16"}}, 200, ""},
		{"icebox:ListNetworks", "GET", "/icebox/v1/networks", "", nil, 200, ""},
		{"icebox:DeleteNetwork", "DELETE", "/icebox/v1/networks/missing", "", nil, 404, notFound},
		{"icebox:GetMetrics", "GET", "/metrics", "", nil, 200, ""},
		logs("FilterLogEvents", map[string]any{"logGroupName": "/aws/lambda/missing"}, 400, notFound),
		logs("GetLogEvents", map[string]any{"logGroupName": "/aws/lambda/missing", "logStreamName": "s"}, 400, notFound),
		logs("DescribeLogGroups", map[string]any{}, 200, ""),
		logs("DescribeLogStreams", map[string]any{"logGroupName": "/aws/lambda/missing"}, 400, notFound),
	}
}

func (op operation) name() string { return op.action + " " + op.method + " " + op.path }

// TestEveryOperation: for every operation, root gets the operation's own
// answer; an unsigned call gets MissingAuthenticationToken (the metrics
// page aside); a user whose policy does not allow the operation's action
// gets AccessDenied naming it; a user allowed exactly that action gets
// root's answer.
func TestEveryOperation(t *testing.T) {
	d := startDaemon(t)
	denied := user(t, d, "nobody")
	for _, op := range operations() {
		t.Run(op.name(), func(t *testing.T) {
			allowed := user(t, d, "only-"+strings.NewReplacer(":", "-").Replace(op.action), append([]string{op.action}, alsoNeeds[op.action]...)...)
			for _, who := range []struct {
				name  string
				creds *aws.Credentials
			}{{"root", root}, {"allowed", allowed}} {
				got := call(t, d, who.creds, op.method, op.path, op.target, op.body)
				if got.status != op.status || got.code != op.code {
					t.Errorf("%s: %d %s (%s), want %d %s", who.name, got.status, got.code, got.msg, op.status, op.code)
				}
				if op.status == 201 { // made something: remove it for the next caller
					cleanup(t, d, op)
				}
			}
			if op.action == "icebox:GetMetrics" {
				return // public on the daemon's own listener; TestMetricsAuth covers the rest
			}
			got := call(t, d, nil, op.method, op.path, op.target, op.body)
			if got.status != 403 && !(op.target != "" && got.status == 400) || got.code != "MissingAuthenticationTokenException" {
				t.Errorf("unsigned: %d %s (%s), want MissingAuthenticationTokenException", got.status, got.code, got.msg)
			}
			got = call(t, d, denied, op.method, op.path, op.target, op.body)
			if got.code != "AccessDeniedException" || !strings.Contains(got.msg, op.action) {
				t.Errorf("denied: %d %s (%s), want AccessDeniedException naming %s", got.status, got.code, got.msg, op.action)
			}
		})
	}
}

func cleanup(t *testing.T, d *daemon.Daemon, op operation) {
	switch op.action {
	case "lambda:CreateFunction":
		call(t, d, root, "DELETE", "/2015-03-31/functions/made", "", nil)
	}
}

// TestBadInputAndInvokeWithoutRoot: bad input maps to Lambda's errors and
// nothing is stored; a function runs (in a fake sandbox) and answers.
func TestBadInputAndInvokeWithoutRoot(t *testing.T) {
	d := startDaemon(t)
	const fns = "/2015-03-31/functions"
	fn := func(name string, mutate func(map[string]any)) []byte {
		in := map[string]any{"FunctionName": name, "Runtime": "provided.al2023", "Handler": "bootstrap",
			"Role": "arn:aws:iam::000000000000:role/r", "Code": map[string]string{"ZipFile": codeZip()}}
		if mutate != nil {
			mutate(in)
		}
		b, _ := json.Marshal(in)
		return b
	}
	if a, raw := send(t, d, root, "POST", fns, fn("echo", nil), nil); a.status != 201 {
		t.Fatalf("create: %d %s", a.status, raw)
	}
	for _, tc := range []struct {
		what         string
		method, path string
		body         []byte
		header       map[string]string
		status       int
		code         string
	}{
		{"name taken", "POST", fns, fn("echo", nil), nil, 409, "ResourceConflictException"},
		{"memory 100", "POST", fns, fn("m", func(in map[string]any) { in["MemorySize"] = 100 }), nil, 400, "InvalidParameterValueException"},
		{"timeout 0", "POST", fns, fn("t", func(in map[string]any) { in["Timeout"] = 0 }), nil, 400, "InvalidParameterValueException"},
		{"env key 1X", "POST", fns, fn("e", func(in map[string]any) { in["Environment"] = map[string]any{"Variables": map[string]string{"1X": "v"}} }), nil, 400, "InvalidParameterValueException"},
		{"not a zip", "POST", fns, fn("z", func(in map[string]any) { in["Code"] = map[string]string{"ZipFile": "bm90IGEgemlw"} }), nil, 400, "InvalidParameterValueException"},
		{"not JSON", "POST", fns, []byte("{"), nil, 400, "InvalidRequestContentException"},
		{"payload 6 MB + 1", "POST", fns + "/echo/invocations", bytes.Repeat([]byte(" "), 6<<20+1), nil, 413, "RequestTooLargeException"},
		{"event 1 MB + 1", "POST", fns + "/echo/invocations", bytes.Repeat([]byte(" "), 1<<20+1), map[string]string{"X-Amz-Invocation-Type": "Event"}, 413, "RequestTooLargeException"},
		{"tail on an event", "POST", fns + "/echo/invocations", []byte("{}"), map[string]string{"X-Amz-Invocation-Type": "Event", "X-Amz-Log-Type": "Tail"}, 400, "InvalidParameterValueException"},
		{"unknown operation", "GET", "/2015-03-31/nothing-here", nil, nil, 404, "UnknownOperationException"},
	} {
		if a, raw := send(t, d, root, tc.method, tc.path, tc.body, tc.header); a.status != tc.status || a.code != tc.code {
			t.Errorf("%s: %d %s %.200s, want %d %s", tc.what, a.status, a.code, raw, tc.status, tc.code)
		}
	}
	a, raw := send(t, d, root, "GET", fns, nil, nil)
	var list struct {
		Functions []struct{ FunctionName string }
	}
	if json.Unmarshal(raw, &list); a.status != 200 || len(list.Functions) != 1 {
		t.Errorf("refused creates left functions behind: %s", raw)
	}

	a, raw = send(t, d, root, "POST", fns+"/echo/invocations", []byte(`{"hello":"world"}`), nil)
	if a.status != 200 || string(raw) != `{"hello":"world"}` {
		t.Errorf("invoke: %d %s", a.status, raw)
	}
	if a, _ = send(t, d, root, "POST", fns+"/echo/invocations", nil, map[string]string{"X-Amz-Invocation-Type": "DryRun"}); a.status != 204 {
		t.Errorf("dry run: %d", a.status)
	}
}

// TestVersionsAndAliasesBeforePublishing: deploy tools read a function's
// versions and aliases on every refresh; before anything is published,
// Lambda lists $LATEST and no alias.
func TestVersionsAndAliasesBeforePublishing(t *testing.T) {
	d := startDaemon(t)
	if a, raw := send(t, d, root, "POST", "/2015-03-31/functions", mustJSON(map[string]any{"FunctionName": "v", "Runtime": "provided.al2023",
		"Handler": "bootstrap", "Role": "arn:aws:iam::000000000000:role/r", "Code": map[string]string{"ZipFile": codeZip()}}), nil); a.status != 201 {
		t.Fatalf("create: %d %s", a.status, raw)
	}
	c := lambda.New(lambda.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + d.Addr()), Retryer: aws.NopRetryer{},
		Credentials: credentials.NewStaticCredentialsProvider(authtest.AccessKeyID, authtest.SecretAccessKey, "")})
	ctx := context.Background()
	vs, err := c.ListVersionsByFunction(ctx, &lambda.ListVersionsByFunctionInput{FunctionName: aws.String("v")})
	if err != nil || len(vs.Versions) != 1 || aws.ToString(vs.Versions[0].Version) != "$LATEST" || aws.ToString(vs.Versions[0].FunctionName) != "v" {
		t.Errorf("versions: %+v %v", vs, err)
	}
	as, err := c.ListAliases(ctx, &lambda.ListAliasesInput{FunctionName: aws.String("v")})
	if err != nil || len(as.Aliases) != 0 {
		t.Errorf("aliases: %+v %v", as, err)
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
