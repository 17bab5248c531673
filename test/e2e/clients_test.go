package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"icebox/internal/auth/authtest"
	"icebox/internal/testkit"
)

// clientEnv is the environment for AWS tools run against s: dummy keys, the
// region, no retries, and nothing of the host's own AWS configuration (no
// profile, config file, endpoint or CA bundle).
func clientEnv(t *testing.T) []string {
	t.Helper()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	dir := t.TempDir()
	return append(env,
		"AWS_ACCESS_KEY_ID="+authtest.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY="+authtest.SecretAccessKey,
		"AWS_DEFAULT_REGION="+authtest.Region,
		"AWS_CONFIG_FILE="+filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_MAX_ATTEMPTS=1",
		"AWS_PAGER=",
	)
}

// awsCLI runs the AWS CLI against one server.
type awsCLI struct {
	t    *testing.T
	path string
	env  []string
	url  string
	v2   bool
}

func newAWSCLI(t *testing.T, s *server) *awsCLI {
	t.Helper()
	path, err := exec.LookPath("aws")
	if err != nil {
		t.Skip("the AWS CLI (aws) is not on PATH")
	}
	c := &awsCLI{t: t, path: path, env: clientEnv(t), url: s.url}
	out, _, code := c.run("--version")
	if code != 0 {
		t.Skipf("aws --version fails (exit %d): %s", code, out)
	}
	c.v2 = strings.Contains(out, "aws-cli/2")
	return c
}

// run returns stdout, stderr and the exit code.
func (c *awsCLI) run(args ...string) (string, string, int) {
	c.t.Helper()
	if args[0] != "--version" {
		args = append([]string{"--endpoint-url", c.url, "--output", "json"}, args...)
	}
	cmd := exec.Command(c.path, args...)
	cmd.Env = c.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return stdout.String(), stderr.String(), 0
	case errors.As(err, &ee):
		return stdout.String(), stderr.String(), ee.ExitCode()
	}
	c.t.Fatalf("aws %v: %v", args, err)
	return "", "", -1
}

// json runs a command that must succeed and decodes its output.
func (c *awsCLI) json(v any, args ...string) {
	c.t.Helper()
	out, errOut, code := c.run(args...)
	if code != 0 {
		c.t.Fatalf("aws %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	if v != nil {
		if err := json.Unmarshal([]byte(out), v); err != nil {
			c.t.Fatalf("aws %s: output %q: %v", strings.Join(args, " "), out, err)
		}
	}
}

type cliConfig struct {
	FunctionName     string
	FunctionArn      string
	CodeSha256       string
	CodeSize         int64
	MemorySize       int
	Timeout          int
	Description      string
	RevisionId       string
	State            string
	LastUpdateStatus string
	Environment      struct{ Variables map[string]string }
}

func TestCLI(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	aws := newAWSCLI(t, s)
	dir := t.TempDir()
	code := functionZip(t)
	zipPath := filepath.Join(dir, "fn.zip")
	tinyPath := filepath.Join(dir, "tiny.zip")
	if err := os.WriteFile(zipPath, code, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tinyPath, tinyZip, 0o644); err != nil {
		t.Fatal(err)
	}

	var created cliConfig
	aws.json(&created, "lambda", "create-function", "--function-name", "cli-fn", "--runtime", "provided.al2023",
		"--handler", "bootstrap", "--role", testRole, "--zip-file", "fileb://"+zipPath,
		"--environment", "Variables={GREETING=hello}")
	if created.FunctionArn != testArnBase+"cli-fn" || created.CodeSha256 != sha256Base64(code) || created.CodeSize != int64(len(code)) ||
		created.State != "Active" || created.MemorySize != 128 || created.Environment.Variables["GREETING"] != "hello" {
		t.Errorf("create-function output: %+v", created)
	}
	aws.json(nil, "lambda", "create-function", "--function-name", "cli-other", "--runtime", "provided.al2023",
		"--handler", "bootstrap", "--role", testRole, "--zip-file", "fileb://"+tinyPath)

	// invoke, with the log tail.
	outFile := filepath.Join(dir, "out.json")
	invokeArgs := func(payload string) []string {
		args := []string{"lambda", "invoke", "--function-name", "cli-fn", "--payload", payload, "--log-type", "Tail"}
		if aws.v2 { // v2 reads --payload as base64 unless told otherwise
			args = append(args, "--cli-binary-format", "raw-in-base64-out")
		}
		return append(args, outFile)
	}
	var inv struct {
		StatusCode      int
		FunctionError   string
		LogResult       string
		ExecutedVersion string
	}
	aws.json(&inv, invokeArgs(`{"action":"cli"}`)...)
	if inv.StatusCode != 200 || inv.FunctionError != "" || inv.ExecutedVersion != "$LATEST" {
		t.Errorf("invoke output: %+v", inv)
	}
	tail, err := base64.StdEncoding.DecodeString(inv.LogResult)
	if err != nil {
		t.Errorf("LogResult %q: %v", inv.LogResult, err)
	}
	for _, want := range []string{"START RequestId: ", "handled cli 1", "END RequestId: ", "REPORT RequestId: ", "Billed Duration: "} {
		if !strings.Contains(string(tail), want) {
			t.Errorf("log tail lacks %q:\n%s", want, tail)
		}
	}
	var res result
	if b, err := os.ReadFile(outFile); err != nil || json.Unmarshal(b, &res) != nil {
		t.Fatalf("invoke output file: %q %v", b, err)
	}
	if res.Calls != 1 || res.Env["GREETING"] != "hello" || res.FunctionArn != testArnBase+"cli-fn" {
		t.Errorf("function result: calls=%d GREETING=%q arn=%q", res.Calls, res.Env["GREETING"], res.FunctionArn)
	}

	// A function error: exit 0, FunctionError in the output, the error body in the file.
	inv.FunctionError = ""
	aws.json(&inv, invokeArgs(`{"action":"fail"}`)...)
	if inv.StatusCode != 200 || inv.FunctionError != "Unhandled" {
		t.Errorf("failing invoke output: %+v", inv)
	}
	if b, _ := os.ReadFile(outFile); !strings.Contains(string(b), `"errorMessage":"failing on request"`) {
		t.Errorf("failing invoke output file: %s", b)
	}

	var got struct {
		Configuration cliConfig
		Code          struct{ Location string }
	}
	aws.json(&got, "lambda", "get-function", "--function-name", testArnBase+"cli-fn")
	if got.Configuration.FunctionName != "cli-fn" || got.Configuration.RevisionId != created.RevisionId || got.Code.Location == "" {
		t.Errorf("get-function output: %+v", got)
	}
	if dl := download(t, got.Code.Location); !bytes.Equal(dl, code) {
		t.Error("get-function Code.Location does not serve the uploaded zip")
	}

	// list-functions, paginated by the CLI one function per page.
	var list struct{ Functions []cliConfig }
	aws.json(&list, "lambda", "list-functions", "--page-size", "1")
	var listed []string
	for _, f := range list.Functions {
		listed = append(listed, f.FunctionName)
	}
	if !slices.Equal(listed, []string{"cli-fn", "cli-other"}) {
		t.Errorf("list-functions: %v, want [cli-fn cli-other]", listed)
	}

	var upd cliConfig
	aws.json(&upd, "lambda", "update-function-configuration", "--function-name", "cli-fn", "--memory-size", "256",
		"--timeout", "10", "--description", "from the CLI", "--environment", "Variables={GREETING=bye}")
	if upd.MemorySize != 256 || upd.Timeout != 10 || upd.Description != "from the CLI" || upd.Environment.Variables["GREETING"] != "bye" ||
		upd.RevisionId == created.RevisionId || upd.LastUpdateStatus != "Successful" {
		t.Errorf("update-function-configuration output: %+v", upd)
	}
	_, errOut, code2 := aws.run("lambda", "update-function-configuration", "--function-name", "cli-fn", "--memory-size", "10241")
	if code2 == 0 || !strings.Contains(errOut, "InvalidParameterValueException") || !strings.Contains(errOut, "memorySize") {
		t.Errorf("update with memory 10241: exit %d, stderr %q", code2, errOut)
	}

	// The function's log lines, through the CloudWatch Logs API. Logs are
	// stored asynchronously: poll.
	var (
		found              bool
		lastCode           int
		lastErr, lastLines string
	)
	defer func() {
		if !found {
			t.Logf("filter-log-events: exit %d %s\n%s", lastCode, lastErr, lastLines)
		}
	}()
	testkit.WaitFor(t, 15*time.Second, "filter-log-events to return the function's lines", func() bool {
		out, errOut, code := aws.run("logs", "filter-log-events", "--log-group-name", "/aws/lambda/cli-fn")
		lastCode, lastErr = code, errOut
		var fl struct {
			Events []struct {
				LogStreamName string
				Message       string
				Timestamp     int64
			}
		}
		var logLines []string
		if code == 0 && json.Unmarshal([]byte(out), &fl) == nil {
			for _, e := range fl.Events {
				logLines = append(logLines, e.Message)
				if !strings.Contains(e.LogStreamName, "/[$LATEST]") || e.Timestamp == 0 {
					t.Errorf("log event %+v", e)
				}
			}
		}
		lastLines = strings.Join(logLines, "")
		return strings.Contains(lastLines, "handled cli 1") && strings.Contains(lastLines, "REPORT RequestId: ")
	})
	found = true

	// Errors: a missing function.
	_, errOut, code3 := aws.run("lambda", "get-function", "--function-name", "cli-missing")
	if (code3 != 254 && code3 != 255) || !strings.Contains(errOut, "ResourceNotFoundException") || !strings.Contains(errOut, "cli-missing") {
		t.Errorf("get-function of a missing function: exit %d, stderr %q; want 254/255 and ResourceNotFoundException", code3, errOut)
	}

	out, errOut, code4 := aws.run("lambda", "delete-function", "--function-name", "cli-fn")
	if code4 != 0 {
		t.Errorf("delete-function: exit %d %s%s", code4, out, errOut)
	}
	if _, errOut, code := aws.run("lambda", "get-function", "--function-name", "cli-fn"); code == 0 || !strings.Contains(errOut, "ResourceNotFoundException") {
		t.Errorf("get-function after delete-function: exit %d %q", code, errOut)
	}
}

// botoReport is what testdata/boto_client.py prints.
type botoReport struct {
	Create struct {
		Status      int    `json:"status"`
		FunctionArn string `json:"FunctionArn"`
		CodeSha256  string `json:"CodeSha256"`
		CodeSize    int64  `json:"CodeSize"`
		State       string `json:"State"`
		MemorySize  int    `json:"MemorySize"`
		RevisionID  string `json:"RevisionId"`
	} `json:"create"`
	Invoke struct {
		Status          int     `json:"status"`
		FunctionError   *string `json:"FunctionError"`
		ExecutedVersion string  `json:"ExecutedVersion"`
		Payload         result  `json:"Payload"`
		Log             string  `json:"Log"`
	} `json:"invoke"`
	InvokeFail struct {
		Status        int           `json:"status"`
		FunctionError *string       `json:"FunctionError"`
		Payload       functionError `json:"Payload"`
	} `json:"invoke_fail"`
	Config struct {
		FunctionName string            `json:"FunctionName"`
		Environment  map[string]string `json:"Environment"`
		RevisionID   string            `json:"RevisionId"`
		Timeout      int               `json:"Timeout"`
	} `json:"config"`
	ListPages        [][]string   `json:"list_pages"`
	InvokeBadPayload *clientError `json:"invoke_bad_payload"`
	DeleteStatus     int          `json:"delete_status"`
	GetDeleted       *clientError `json:"get_deleted"`
	InvokeDeleted    *clientError `json:"invoke_deleted"`
}

// clientError is botocore's ClientError as the script reports it.
type clientError struct {
	Code           string
	Message        string
	HTTPStatusCode int
}

// boto3Python finds the python3 on PATH that can import boto3, with the
// environment the client tests run it in.
// boto3 returns a runner of Python programs that use the boto3 of the
// Python on PATH (the test skips without one): run passes args to that
// Python, fails the test with the program's stderr if it exits non-zero,
// and returns its stdout.
func boto3(t *testing.T) (run func(args ...string) []byte) {
	t.Helper()
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not on PATH")
	}
	env := clientEnv(t)
	check := exec.Command(python, "-c", "import boto3")
	check.Env = env
	if out, err := check.CombinedOutput(); err != nil {
		t.Skipf("%s cannot import boto3: %v %s", python, err, out)
	}
	return func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command(python, args...)
		cmd.Env = env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("python %s: %v\n%s", args[0], err, stderr.String())
		}
		return out
	}
}

func TestBoto3(t *testing.T) {
	run := boto3(t)
	s := startServer(t)
	code := functionZip(t)
	zipPath := filepath.Join(t.TempDir(), "fn.zip")
	if err := os.WriteFile(zipPath, code, 0o644); err != nil {
		t.Fatal(err)
	}
	out := run("testdata/boto_client.py", s.url, "boto-fn", zipPath)
	var r botoReport
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("boto_client.py printed %q: %v", out, err)
	}

	if c := r.Create; c.Status != 201 || c.FunctionArn != testArnBase+"boto-fn" || c.CodeSha256 != sha256Base64(code) ||
		c.CodeSize != int64(len(code)) || c.State != "Active" || c.MemorySize != 128 || c.RevisionID == "" {
		t.Errorf("create_function: %+v", c)
	}
	if i := r.Invoke; i.Status != 200 || i.FunctionError != nil || i.ExecutedVersion != "$LATEST" || i.Payload.Calls != 1 ||
		i.Payload.Env["FROM"] != "boto3" || !strings.Contains(i.Log, "handled boto 1") || !strings.Contains(i.Log, "REPORT RequestId: "+i.Payload.RequestID) {
		t.Errorf("invoke: status %d error %v version %q calls %d FROM=%q log:\n%s", i.Status, i.FunctionError, i.ExecutedVersion,
			i.Payload.Calls, i.Payload.Env["FROM"], i.Log)
	}
	if f := r.InvokeFail; f.Status != 200 || f.FunctionError == nil || *f.FunctionError != "Unhandled" ||
		f.Payload.ErrorMessage != "failing on request" || f.Payload.ErrorType != "errorString" {
		t.Errorf("invoke with a failing handler: %+v", f)
	}
	if c := r.Config; c.FunctionName != "boto-fn" || c.Environment["FROM"] != "boto3" || c.RevisionID != r.Create.RevisionID || c.Timeout != 3 {
		t.Errorf("get_function_configuration: %+v", c)
	}
	var listed []string
	for _, p := range r.ListPages {
		if len(p) > 1 {
			t.Errorf("list_functions page %v with PageSize 1", p)
		}
		listed = append(listed, p...)
	}
	if !slices.Equal(listed, []string{"boto-fn", "boto-fn-p1", "boto-fn-p2"}) {
		t.Errorf("list_functions paginator: %v, want each function once, in order", r.ListPages)
	}
	if e := r.InvokeBadPayload; e == nil || e.Code != "InvalidRequestContentException" || e.HTTPStatusCode != 400 {
		t.Errorf("invoke with a non-JSON payload: %+v", e)
	}
	if r.DeleteStatus != 204 {
		t.Errorf("delete_function status %d, want 204", r.DeleteStatus)
	}
	for what, e := range map[string]*clientError{"get_function": r.GetDeleted, "invoke": r.InvokeDeleted} {
		if e == nil || e.Code != "ResourceNotFoundException" || e.HTTPStatusCode != 404 || !strings.Contains(e.Message, "Function not found: "+testArnBase+"boto-fn") {
			t.Errorf("%s after delete: %+v, want ResourceNotFoundException 404 naming the function", what, e)
		}
	}
}
