package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// Function URLs end to end: a Python function behind its URL, called with
// net/http, curl and requests signed by aws-sdk-go-v2's signer; the URL
// configuration through the SDK and the AWS CLI.

// localhostClient resolves every *.localhost name to loopback, as RFC 6761
// asks of resolvers (browsers and curl do; Go and glibc without
// systemd-resolved ask DNS, which knows no such names).
func localhostClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err == nil && (host == "localhost" || strings.HasSuffix(host, ".localhost")) {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}}
}

// urlDo sends req and returns the response with its body read.
func urlDo(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := localhostClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

// sigV4 signs req for service lambda with aws-sdk-go-v2's signer.
func sigV4(t *testing.T, req *http.Request, body []byte) {
	t.Helper()
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: rootCredentials.Value.AccessKeyID,
		SecretAccessKey: rootCredentials.Value.SecretAccessKey}, req, hex.EncodeToString(sum[:]), "lambda", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
}

func TestFunctionURLPython(t *testing.T) {
	t.Parallel()
	needPython(t)
	s := startServer(t)
	ctx := context.Background()
	s.create("web", withPython(t, "url", "app.handler"))
	cfg, err := s.client.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("web"),
		AuthType: types.FunctionUrlAuthTypeNone,
		Cors:     &types.Cors{AllowOrigins: []string{"https://app.example"}, AllowMethods: []string{"GET", "POST"}, AllowHeaders: []string{"x-reply-a"}, MaxAge: aws.Int32(300)}})
	if err != nil {
		t.Fatal(err)
	}
	u := aws.ToString(cfg.FunctionUrl)
	if !regexp.MustCompile(`^http://[a-z0-9]{32}\.lambda-url\.us-east-1\.localhost:\d+/$`).MatchString(u) || cfg.InvokeMode != types.InvokeModeBuffered {
		t.Fatalf("FunctionUrl %q, InvokeMode %q", u, cfg.InvokeMode)
	}

	get := func() (*http.Response, []byte) {
		req, _ := http.NewRequest("GET", u+"shop/items?status=207&tag=a&tag=b", nil)
		req.Header.Set("Cookie", "session=abc; theme=dark")
		req.Header.Set("X-Reply-Content-Type", "text/plain")
		req.Header.Set("X-Reply-X-Trace", "t-1")
		return urlDo(t, req)
	}
	resp, body := get()
	if resp.StatusCode != 403 || string(body) != `{"Message":"Forbidden"}`+"\n" {
		t.Fatalf("NONE without the policy statement: %d %s", resp.StatusCode, body)
	}
	if _, err := s.client.AddPermission(ctx, &lambda.AddPermissionInput{FunctionName: aws.String("web"), StatementId: aws.String("public"),
		Action: aws.String("lambda:InvokeFunctionUrl"), Principal: aws.String("*"), FunctionUrlAuthType: types.FunctionUrlAuthTypeNone}); err != nil {
		t.Fatal(err)
	}

	// GET with a query and cookies: status, headers and cookies as sent.
	resp, body = get()
	h := resp.Header
	if resp.StatusCode != 207 || h.Get("Content-Type") != "text/plain" || h.Get("X-Trace") != "t-1" ||
		strings.Join(h.Values("Set-Cookie"), "|") != "session=abc; Path=/|theme=dark; Path=/" || len(body) != 0 ||
		h.Get("X-Seen-Method") != "GET" || h.Get("X-Seen-Path") != "/shop/items" || h.Get("X-Seen-Query") != "status=207&tag=a&tag=b" ||
		h.Get("X-Seen-Version") != "2.0" || h.Get("X-Seen-Request-Id") != h.Get("X-Amzn-Requestid") || h.Get("X-Seen-Aws-Request-Id") != h.Get("X-Amzn-Requestid") ||
		!strings.HasPrefix(h.Get("X-Seen-Trace"), "Root=1-") || h.Get("X-Seen-Trace") != h.Get("X-Seen-Env-Trace") {
		t.Errorf("GET: %d %v %q", resp.StatusCode, h, body)
	}
	// POST with a binary body: the same bytes come back.
	bin := make([]byte, 256)
	for i := range bin {
		bin[i] = byte(i)
	}
	req, _ := http.NewRequest("POST", u, bytes.NewReader(bin))
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("X-Reply-Content-Type", "application/octet-stream")
	resp, body = urlDo(t, req)
	if resp.StatusCode != 200 || !bytes.Equal(body, bin) || resp.Header.Get("Content-Type") != "application/octet-stream" {
		t.Errorf("POST binary: %d %v %x", resp.StatusCode, resp.Header, body)
	}
	// CORS preflight, answered by the URL.
	req, _ = http.NewRequest("OPTIONS", u, nil)
	req.Header.Set("Origin", "https://app.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	resp, _ = urlDo(t, req)
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		resp.Header.Get("Access-Control-Allow-Methods") != "GET,POST" || resp.Header.Get("Access-Control-Max-Age") != "300" {
		t.Errorf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	// The URL works as returned with a client that resolves *.localhost itself.
	if curl, err := exec.LookPath("curl"); err == nil {
		out, err := exec.Command(curl, "-s", "-i", u+"?status=201").CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), "HTTP/1.1 201") {
			t.Errorf("curl %s: %v\n%s", u, err, out)
		}
	}

	// AWS_IAM: an unsigned call is refused, a SigV4-signed one runs.
	if _, err := s.client.UpdateFunctionUrlConfig(ctx, &lambda.UpdateFunctionUrlConfigInput{FunctionName: aws.String("web"), AuthType: types.FunctionUrlAuthTypeAwsIam}); err != nil {
		t.Fatal(err)
	}
	payload := []byte(`{"order":1}`)
	req, _ = http.NewRequest("POST", u+"?status=202", bytes.NewReader(payload))
	req.Header.Set("Content-Type", "application/json")
	if resp, body = urlDo(t, req); resp.StatusCode != 403 {
		t.Errorf("unsigned call to an AWS_IAM URL: %d %s", resp.StatusCode, body)
	}
	req, _ = http.NewRequest("POST", u+"?status=202", bytes.NewReader(payload))
	req.Header.Set("Content-Type", "application/json")
	sigV4(t, req, payload)
	if resp, body = urlDo(t, req); resp.StatusCode != 202 || string(body) != string(payload) {
		t.Errorf("signed call: %d %s", resp.StatusCode, body)
	}
}

// TestFunctionURLCLI: the URL configuration round trip with the AWS CLI.
func TestFunctionURLCLI(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	cli := newAWSCLI(t, s)
	s.create("cli-url")
	type cfg struct {
		FunctionUrl, FunctionArn, AuthType, InvokeMode, CreationTime, LastModifiedTime string
		Cors                                                                           struct {
			AllowOrigins []string
			MaxAge       int
		}
	}
	var created, got, updated cfg
	cli.json(&created, "lambda", "create-function-url-config", "--function-name", "cli-url", "--auth-type", "AWS_IAM",
		"--cors", `{"AllowOrigins":["https://a.example"],"MaxAge":60}`)
	if created.AuthType != "AWS_IAM" || created.InvokeMode != "BUFFERED" || created.Cors.MaxAge != 60 ||
		created.FunctionArn != "arn:aws:lambda:us-east-1:000000000000:function:cli-url" || !strings.Contains(created.FunctionUrl, ".lambda-url.us-east-1.localhost:") {
		t.Errorf("create: %+v", created)
	}
	cli.json(&got, "lambda", "get-function-url-config", "--function-name", "cli-url")
	if got.FunctionUrl != created.FunctionUrl || got.LastModifiedTime == "" {
		t.Errorf("get: %+v", got)
	}
	cli.json(&updated, "lambda", "update-function-url-config", "--function-name", "cli-url", "--auth-type", "NONE", "--invoke-mode", "RESPONSE_STREAM")
	if updated.AuthType != "NONE" || updated.InvokeMode != "RESPONSE_STREAM" || updated.FunctionUrl != created.FunctionUrl {
		t.Errorf("update: %+v", updated)
	}
	var list struct{ FunctionUrlConfigs []cfg }
	cli.json(&list, "lambda", "list-function-url-configs", "--function-name", "cli-url")
	if len(list.FunctionUrlConfigs) != 1 || list.FunctionUrlConfigs[0].AuthType != "NONE" {
		t.Errorf("list: %+v", list)
	}
	var perm struct{ Statement string }
	cli.json(&perm, "lambda", "add-permission", "--function-name", "cli-url", "--statement-id", "url", "--action", "lambda:InvokeFunctionUrl",
		"--principal", "*", "--function-url-auth-type", "NONE")
	var st struct{ Condition map[string]map[string]string }
	if json.Unmarshal([]byte(perm.Statement), &st); st.Condition["StringEquals"]["lambda:FunctionUrlAuthType"] != "NONE" {
		t.Errorf("add-permission --function-url-auth-type: %s", perm.Statement)
	}
	cli.json(nil, "lambda", "delete-function-url-config", "--function-name", "cli-url")
	if _, errOut, code := cli.run("lambda", "get-function-url-config", "--function-name", "cli-url"); code == 0 || !strings.Contains(errOut, "ResourceNotFoundException") {
		t.Errorf("get after delete: exit %d %s", code, errOut)
	}
	if _, errOut, code := cli.run("lambda", "create-function-url-config", "--function-name", "cli-url", "--auth-type", "OPEN"); code == 0 || !strings.Contains(errOut, "authType") {
		t.Errorf("bad auth type: exit %d %s", code, errOut)
	}
}
