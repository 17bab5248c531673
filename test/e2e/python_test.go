package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// Python functions are ordinary handler files as users write them
// (testdata/python/DIR), deployed as python3.11 and run by icebox's runtime
// client (runtimes/python/bootstrap.py) on the host's /usr/bin/python3.11.

const python311 = "/usr/bin/python3.11"

func needPython(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(python311); err != nil {
		t.Skipf("%s is not installed; the python3.11 runtime cannot run here", python311)
	}
}

// pythonZip zips testdata/python/DIR with paths relative to it.
func pythonZip(t testing.TB, dir string) []byte {
	t.Helper()
	root := filepath.Join("testdata", "python", dir)
	files := map[string][]byte{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		files[filepath.ToSlash(rel)], err = os.ReadFile(path)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return zipOf(files)
}

// withPython deploys testdata/python/DIR as a python3.11 function.
func withPython(t testing.TB, dir, handler string) func(*lambda.CreateFunctionInput) {
	zip := pythonZip(t, dir)
	return func(in *lambda.CreateFunctionInput) {
		in.Runtime = types.RuntimePython311
		in.Handler = aws.String(handler)
		in.Code.ZipFile = zip
	}
}

// pyCall invokes name and decodes its successful result into v.
func (s *server) pyCall(name string, event, v any, mutate ...func(*lambda.InvokeInput)) *lambda.InvokeOutput {
	s.t.Helper()
	out := s.invoke(name, event, mutate...)
	if out.FunctionError != nil {
		s.t.Fatalf("invoke %s: function error %s: %s", name, *out.FunctionError, out.Payload)
	}
	if v != nil {
		if err := json.Unmarshal(out.Payload, v); err != nil {
			s.t.Fatalf("decode %s: %v", out.Payload, err)
		}
	}
	return out
}

// pyError is the Python runtime's error body.
type pyError struct {
	ErrorMessage string   `json:"errorMessage"`
	ErrorType    string   `json:"errorType"`
	RequestID    *string  `json:"requestId"`
	StackTrace   []string `json:"stackTrace"`
}

// pyFail invokes name, expects an Unhandled function error and decodes it.
func (s *server) pyFail(name string, event any) (pyError, *lambda.InvokeOutput) {
	s.t.Helper()
	out := s.invoke(name, event, func(in *lambda.InvokeInput) { in.LogType = types.LogTypeTail })
	if out.StatusCode != 200 || out.FunctionError == nil || *out.FunctionError != "Unhandled" {
		s.t.Fatalf("invoke %s: want 200 with an Unhandled function error, got %d %v: %s", name, out.StatusCode, out.FunctionError, out.Payload)
	}
	var e pyError
	if err := json.Unmarshal(out.Payload, &e); err != nil {
		s.t.Fatalf("decode error %s: %v", out.Payload, err)
	}
	return e, out
}

func tailLog(t testing.TB, out *lambda.InvokeOutput) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
	if err != nil {
		t.Fatalf("LogResult: %v", err)
	}
	return string(b)
}

var startLine = regexp.MustCompile(`START RequestId: (\S+)`)

// requestIDOf is the request id the platform logged for a call.
func requestIDOf(t testing.TB, out *lambda.InvokeOutput) string {
	t.Helper()
	m := startLine.FindStringSubmatch(tailLog(t, out))
	if m == nil {
		t.Fatalf("no START line in the log tail:\n%s", tailLog(t, out))
	}
	return m[1]
}

func TestPythonContextAndEnvironment(t *testing.T) {
	needPython(t)
	s := startServer(t)
	s.create("py-ctx", withPython(t, "context", "app.handler"), func(in *lambda.CreateFunctionInput) {
		in.MemorySize = aws.Int32(256)
		in.Environment = &types.Environment{Variables: map[string]string{"GREETING": "hi"}}
	})
	clientContext := `{"custom":{"cart":"42"},"env":{"locale":"fr_FR"},"client":{"installation_id":"inst-1","app_title":"shop"}}`
	var r struct {
		Event              map[string]any `json:"event"`
		AWSRequestID       string         `json:"aws_request_id"`
		FunctionName       string         `json:"function_name"`
		FunctionVersion    string         `json:"function_version"`
		InvokedFunctionArn string         `json:"invoked_function_arn"`
		MemoryLimitInMB    any            `json:"memory_limit_in_mb"`
		LogGroupName       string         `json:"log_group_name"`
		LogStreamName      string         `json:"log_stream_name"`
		RemainingMs        int64          `json:"remaining_ms"`
		ClientContext      *struct {
			Custom         map[string]string `json:"custom"`
			Env            map[string]string `json:"env"`
			InstallationID string            `json:"installation_id"`
			AppTitle       string            `json:"app_title"`
		} `json:"client_context"`
		Identity struct {
			CognitoIdentityID     *string `json:"cognito_identity_id"`
			CognitoIdentityPoolID *string `json:"cognito_identity_pool_id"`
		} `json:"identity"`
		Env     map[string]string `json:"env"`
		Cwd     string            `json:"cwd"`
		SysPath []string          `json:"sys_path"`
		Version string            `json:"version"`
		UID     int               `json:"uid"`
	}
	event := map[string]any{"order": map[string]any{"id": "o-1", "items": []any{"a", "b"}}, "n": 3.5, "ok": true, "none": nil}
	out := s.pyCall("py-ctx", event, &r, func(in *lambda.InvokeInput) {
		in.LogType = types.LogTypeTail
		in.ClientContext = aws.String(base64.StdEncoding.EncodeToString([]byte(clientContext)))
	})

	if got, _ := json.Marshal(r.Event); !jsonEqual(got, mustJSON(event)) {
		t.Errorf("event round trip = %s, want %s", got, mustJSON(event))
	}
	if id := requestIDOf(t, out); r.AWSRequestID != id {
		t.Errorf("aws_request_id = %q, the platform logged %q", r.AWSRequestID, id)
	}
	if r.FunctionName != "py-ctx" || r.FunctionVersion != "$LATEST" || r.InvokedFunctionArn != testArnBase+"py-ctx" {
		t.Errorf("function_name %q function_version %q invoked_function_arn %q", r.FunctionName, r.FunctionVersion, r.InvokedFunctionArn)
	}
	// Lambda's Python runtime reads it from the environment: a string.
	if r.MemoryLimitInMB != "256" {
		t.Errorf("memory_limit_in_mb = %#v, want the string \"256\" as on Lambda", r.MemoryLimitInMB)
	}
	if r.LogGroupName != "/aws/lambda/py-ctx" || r.LogStreamName != r.Env["AWS_LAMBDA_LOG_STREAM_NAME"] || !strings.Contains(r.LogStreamName, "/[$LATEST]") {
		t.Errorf("log_group_name %q log_stream_name %q (env %q)", r.LogGroupName, r.LogStreamName, r.Env["AWS_LAMBDA_LOG_STREAM_NAME"])
	}
	if r.RemainingMs <= 1000 || r.RemainingMs > 3000 {
		t.Errorf("get_remaining_time_in_millis() = %d, want within the 3 s timeout", r.RemainingMs)
	}
	if cc := r.ClientContext; cc == nil || cc.Custom["cart"] != "42" || cc.Env["locale"] != "fr_FR" || cc.InstallationID != "inst-1" || cc.AppTitle != "shop" {
		t.Errorf("client_context = %+v", cc)
	}
	if r.Identity.CognitoIdentityID != nil || r.Identity.CognitoIdentityPoolID != nil {
		t.Errorf("identity = %+v, want an identity with empty fields", r.Identity)
	}
	want := map[string]string{
		"AWS_EXECUTION_ENV": "AWS_Lambda_python3.11", "_HANDLER": "app.handler", "GREETING": "hi",
		"AWS_LAMBDA_FUNCTION_NAME": "py-ctx", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256", "LAMBDA_TASK_ROOT": "/var/task",
		"LAMBDA_RUNTIME_DIR": "/var/runtime", "AWS_REGION": "us-east-1", "TZ": ":UTC",
	}
	for k, v := range want {
		if r.Env[k] != v {
			t.Errorf("env %s = %q, want %q", k, r.Env[k], v)
		}
	}
	if !strings.HasPrefix(r.Env["_X_AMZN_TRACE_ID"], "Root=1-") {
		t.Errorf("_X_AMZN_TRACE_ID = %q, want the call's trace header", r.Env["_X_AMZN_TRACE_ID"])
	}
	if r.Cwd != "/var/task" || r.Version != "3.11" || r.UID == 0 {
		t.Errorf("cwd %q python %s uid %d", r.Cwd, r.Version, r.UID)
	}
	// As on Lambda: PYTHONPATH=/var/runtime puts it before the standard library.
	if len(r.SysPath) < 5 || r.SysPath[0] != "/var/task" || r.SysPath[1] != "/opt/python/lib/python3.11/site-packages" || r.SysPath[2] != "/opt/python" ||
		r.SysPath[3] != "/var/runtime" || slices.Index(r.SysPath[4:], "/var/runtime") >= 0 {
		t.Errorf("sys.path = %q, want /var/task, the layer dirs, then /var/runtime (once)", r.SysPath)
	}

	// The next call has its own request id, deadline and trace id, and no client context.
	var r2 struct {
		AWSRequestID  string            `json:"aws_request_id"`
		ClientContext any               `json:"client_context"`
		Env           map[string]string `json:"env"`
	}
	s.pyCall("py-ctx", map[string]any{}, &r2)
	if r2.AWSRequestID == r.AWSRequestID || r2.ClientContext != nil || r2.Env["_X_AMZN_TRACE_ID"] == r.Env["_X_AMZN_TRACE_ID"] {
		t.Errorf("second call: request id %q (first %q), client_context %v, trace %q", r2.AWSRequestID, r.AWSRequestID, r2.ClientContext, r2.Env["_X_AMZN_TRACE_ID"])
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return bytes.Equal(mustJSON(x), mustJSON(y))
}

func TestPythonWarmReuseAndTmp(t *testing.T) {
	needPython(t)
	s := startServer(t)
	s.create("py-warm", withPython(t, "warm", "lambda_function.lambda_handler"))
	type warm struct {
		Queries   int     `json:"queries"`
		OpenedAt  float64 `json:"opened_at"`
		TmpBefore string  `json:"tmp_before"`
		PID       int     `json:"pid"`
	}
	var calls []warm
	for range 3 {
		var w warm
		s.pyCall("py-warm", map[string]any{}, &w)
		calls = append(calls, w)
	}
	for i, w := range calls {
		if w.Queries != i+1 || w.TmpBefore != strings.Repeat("x", i) || w.OpenedAt != calls[0].OpenedAt || w.PID != calls[0].PID {
			t.Errorf("call %d: %+v; want the global client opened once (queries counting up), /tmp kept, one process", i+1, w)
		}
	}
	// A new configuration is a new environment: init runs again.
	_, err := s.client.UpdateFunctionConfiguration(t.Context(), &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String("py-warm"), Environment: &types.Environment{Variables: map[string]string{"CONFIG_VERSION": "2"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var w warm
	s.pyCall("py-warm", map[string]any{}, &w)
	if w.Queries != 1 || w.TmpBefore != "" {
		t.Errorf("after a configuration update: %+v, want a fresh environment", w)
	}
}

func TestPythonDottedPackageHandler(t *testing.T) {
	needPython(t)
	s := startServer(t)
	s.create("py-pkg", withPython(t, "pkg", "shop.orders.handlers.create.handle"))
	var r struct {
		Total  float64 `json:"total"`
		Module string  `json:"module"`
		Tax    float64 `json:"tax"`
		Count  any     `json:"count"`
	}
	out := s.pyCall("py-pkg", map[string]any{"items": []any{map[string]any{"price": 2.5, "qty": 2}, map[string]any{"price": 1}}}, &r)
	if r.Total != 6 || r.Module != "shop.orders.handlers.create" {
		t.Errorf("result %s", out.Payload)
	}
	// Decimals (DynamoDB's numbers) are written as JSON numbers with their
	// exact digits, as on Lambda.
	if r.Tax != 0.2 || r.Count != float64(3) || !strings.Contains(string(out.Payload), `"count": 3`) || !strings.Contains(string(out.Payload), `"tax": 0.20`) {
		t.Errorf("decimals in %s", out.Payload)
	}
}

func TestPythonHandlerErrors(t *testing.T) {
	needPython(t)
	s := startServer(t)
	s.create("py-err", withPython(t, "errors", "app.handler"))

	e, out := s.pyFail("py-err", map[string]any{"action": "raise"})
	if e.ErrorType != "ValueError" || e.ErrorMessage != "boom" {
		t.Errorf("exception body: %s", out.Payload)
	}
	if e.RequestID == nil || *e.RequestID != requestIDOf(t, out) {
		t.Errorf("requestId %v, want the call's", e.RequestID)
	}
	wantTrace := []string{
		"  File \"/var/task/app.py\", line 14, in handler\n    validate({})\n",
		"  File \"/var/task/app.py\", line 6, in validate\n    raise ValueError(\"boom\")\n",
	}
	if strings.Join(e.StackTrace, "|") != strings.Join(wantTrace, "|") {
		t.Errorf("stackTrace = %q\nwant          %q (the function's frames only)", e.StackTrace, wantTrace)
	}
	// One event (framed on the telemetry descriptor), its lines the traceback's.
	if log := tailLog(t, out); !strings.Contains(log, "[ERROR] ValueError: boom\nTraceback (most recent call last):\n  File \"/var/task/app.py\", line 14, in handler\n") {
		t.Errorf("log tail lacks Lambda's [ERROR] line:\n%q", log)
	}

	e, out = s.pyFail("py-err", map[string]any{"action": "custom"})
	if e.ErrorType != "OrderRejected" || e.ErrorMessage != "order 42 rejected" || len(e.StackTrace) != 1 {
		t.Errorf("custom exception body: %s", out.Payload)
	}

	e, out = s.pyFail("py-err", map[string]any{"action": "unserializable"})
	if e.ErrorType != "Runtime.MarshalError" || e.ErrorMessage != "Unable to marshal response: Object of type set is not JSON serializable" {
		t.Errorf("unserializable result: %s", out.Payload)
	}

	e, out = s.pyFail("py-err", map[string]any{"action": "big"})
	if e.ErrorType != "Function.ResponseSizeTooLarge" {
		t.Errorf("oversized result: %.300s", out.Payload)
	}

	if out := s.pyCall("py-err", map[string]any{"action": "bytes"}, nil); string(out.Payload) != "raw bytes" {
		t.Errorf("bytes result = %q, want them as they are", out.Payload)
	}
	// A 5 MB event and answer, with text beyond ASCII, round trip intact.
	big := map[string]any{"action": "echo", "text": strings.Repeat("é€😀 ", 1<<15), "blob": strings.Repeat("x", 4<<20)}
	if out := s.pyCall("py-err", big, nil); !jsonEqual(out.Payload, mustJSON(big)) {
		t.Errorf("echo of a %d-byte event came back different (%d bytes)", len(mustJSON(big)), len(out.Payload))
	}
	// The environment survived every failure above.
	var r struct{ Calls int }
	s.pyCall("py-err", map[string]any{}, &r)
	if r.Calls != 7 {
		t.Errorf("calls = %d, want 7: function errors keep the environment", r.Calls)
	}
}

func TestPythonInitErrors(t *testing.T) {
	needPython(t)
	s := startServer(t)
	for _, tc := range []struct {
		name, dir, handler string
		errorType, message string
		trace              string
	}{
		{"module-missing", "errors", "orders.handler", "Runtime.ImportModuleError", "Unable to import module 'orders': No module named 'orders'", ""},
		{"dependency-missing", "broken_import", "app.handler", "Runtime.ImportModuleError",
			"Unable to import module 'app': No module named 'requests_that_do_not_exist'", ""},
		{"handler-missing", "errors", "app.process", "Runtime.HandlerNotFound", "Handler 'process' missing on module 'app'", ""},
		{"syntax", "syntax", "app.handler", "Runtime.UserCodeSyntaxError", "Syntax error in module 'app': expected ':' (app.py, line 1)",
			"  File \"/var/task/app.py\" Line 1\n    def handler(event, context)\n"},
		{"malformed", "errors", "handler", "Runtime.MalformedHandlerName", "Bad handler 'handler': not enough values to unpack (expected 2, got 1)", ""},
		// Any other exception at import is reported as itself.
		{"raises", "init_raise", "app.handler", "KeyError", "'TABLE_NAME'",
			"  File \"/var/task/app.py\", line 3, in <module>\n    TABLE = os.environ[\"TABLE_NAME\"]  # configuration read at import time\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := "py-init-" + tc.name
			s.create(name, withPython(t, tc.dir, tc.handler))
			e, out := s.pyFail(name, map[string]any{})
			if e.ErrorType != tc.errorType || e.ErrorMessage != tc.message {
				t.Errorf("got %s\nwant errorType %s, errorMessage %q", out.Payload, tc.errorType, tc.message)
			}
			if e.RequestID == nil || *e.RequestID != "" || e.StackTrace == nil {
				t.Errorf("body %s: want Lambda's init error shape (requestId \"\", stackTrace list)", out.Payload)
			}
			if tc.trace != "" && (len(e.StackTrace) == 0 || e.StackTrace[0] != tc.trace) {
				t.Errorf("stackTrace = %q, want it to start with %q", e.StackTrace, tc.trace)
			}
			// The call is still logged, after the init's error, and the
			// tail shows it all.
			tail := tailLog(t, out)
			for _, want := range []string{"INIT_START Runtime Version: python:3.11", "[ERROR] " + tc.errorType, "INIT_REPORT Init Duration: ",
				"START RequestId: ", "END RequestId: ", "REPORT RequestId: ", "\tStatus: error\tError Type: " + tc.errorType} {
				if !strings.Contains(tail, want) {
					t.Errorf("tail lacks %q:\n%s", want, tail)
				}
			}
			// Every call fails the same way: nothing half-initialised is kept.
			if e2, _ := s.pyFail(name, map[string]any{}); e2.ErrorType != tc.errorType {
				t.Errorf("second call: %+v", e2)
			}
			if idle := s.d.Environments()["idle"]; idle != 0 {
				t.Errorf("%d idle environments after failed inits", idle)
			}
		})
	}
}

func TestPythonLogs(t *testing.T) {
	needPython(t)
	s := startServer(t)
	s.create("py-logs", withPython(t, "logs", "app.handler"))
	out := s.pyCall("py-logs", map[string]any{"n": 7}, nil, func(in *lambda.InvokeInput) { in.LogType = types.LogTypeTail })
	log := tailLog(t, out)
	id := requestIDOf(t, out)
	lines := strings.Split(log, "\n")
	idx := func(pred func(string) bool) int {
		for i, l := range lines {
			if pred(l) {
				return i
			}
		}
		return -1
	}
	printed := idx(func(l string) bool { return l == "hello from print 7" })
	logged := idx(func(l string) bool {
		return regexp.MustCompile(`^\[INFO\]\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\t` + regexp.QuoteMeta(id) + `\tprocessing order 7$`).MatchString(l)
	})
	end := idx(func(l string) bool { return strings.HasPrefix(l, "END RequestId: "+id) })
	// print writes to stdout, logging to the telemetry descriptor: two
	// pipes, so only their order against END is fixed.
	if printed < 0 || logged < 0 || end < 0 || printed > end || logged > end {
		t.Errorf("want the print line and Lambda's [INFO] line before END in the tail:\n%s", log)
	}
	if strings.Contains(log, "not shown at INFO") {
		t.Errorf("debug record logged at level INFO:\n%s", log)
	}
}

// TestPythonBoto3: boto3 is importable without bundling it, as on Lambda:
// icebox installs the SDK pinned in runtimes/sdk/python on the runtime's
// first use and mounts it at /var/runtime/site-packages.
func TestPythonBoto3(t *testing.T) {
	needPython(t)
	s := startServer(t)
	s.create("py-boto", withPython(t, "boto", "app.handler"), func(in *lambda.CreateFunctionInput) { in.Timeout = aws.Int32(30) })
	var r struct {
		Boto3, Botocore, Region string
		File                    string `json:"boto3_file"`
		AccessKeyPrefix         string `json:"access_key_prefix"`
	}
	s.pyCall("py-boto", map[string]any{}, &r)
	boto3, botocore := pinnedBoto3(t)
	if r.Boto3 != boto3 || r.Botocore != botocore || !strings.HasPrefix(r.File, "/var/runtime/site-packages/boto3/") ||
		r.Region != "us-east-1" || r.AccessKeyPrefix != "ASIA" {
		t.Errorf("boto3 inside the function: %+v, want boto3 %s and botocore %s from /var/runtime/site-packages", r, boto3, botocore)
	}
	t.Logf("boto3 %s, botocore %s from %s", r.Boto3, r.Botocore, r.File)
}

// pinnedBoto3 reads the boto3 and botocore versions the repository pins.
func pinnedBoto3(t testing.TB) (boto3, botocore string) {
	t.Helper()
	b, err := os.ReadFile("../../runtimes/sdk/python/requirements.txt")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "boto3=="); ok {
			boto3 = strings.Fields(v)[0]
		}
		if v, ok := strings.CutPrefix(line, "botocore=="); ok {
			botocore = strings.Fields(v)[0]
		}
	}
	if boto3 == "" || botocore == "" {
		t.Fatalf("no boto3 or botocore pin in requirements.txt")
	}
	return boto3, botocore
}

// TestPythonBundledBoto3Wins: a function that ships its own (older) boto3
// and botocore gets them, not the SDK icebox provides, as on Lambda.
func TestPythonBundledBoto3Wins(t *testing.T) {
	needPython(t)
	s := startServer(t)
	zip := zipOf(map[string][]byte{
		"app.py": []byte("import boto3, botocore, sys\n\ndef handler(event, context):\n" +
			"    sdk = [p for p in sys.path if p.startswith('/var/runtime')]\n" +
			"    return {'boto3': boto3.__version__, 'botocore': botocore.__version__, 'file': boto3.__file__, 'sdk': sdk}\n"),
		"boto3/__init__.py":    []byte("__version__ = '1.26.0'\n"),
		"botocore/__init__.py": []byte("__version__ = '1.29.0'\n"),
	})
	s.create("py-own-boto", func(in *lambda.CreateFunctionInput) {
		in.Runtime, in.Handler, in.Code.ZipFile, in.Timeout = types.RuntimePython311, aws.String("app.handler"), zip, aws.Int32(30)
	})
	var r struct {
		Boto3, Botocore, File string
		SDK                   []string
	}
	s.pyCall("py-own-boto", map[string]any{}, &r)
	if r.Boto3 != "1.26.0" || r.Botocore != "1.29.0" || r.File != "/var/task/boto3/__init__.py" ||
		!slices.Equal(r.SDK, []string{"/var/runtime", "/var/runtime/site-packages"}) { // PYTHONPATH, then the SDK
		t.Errorf("bundled boto3: %+v", r)
	}
}

func TestPythonTimeout(t *testing.T) {
	needPython(t)
	s := startServer(t)
	s.create("py-slow", withPython(t, "timeout", "app.handler"), func(in *lambda.CreateFunctionInput) { in.Timeout = aws.Int32(1) })
	start := time.Now()
	e, out := s.pyFail("py-slow", map[string]any{})
	if e.ErrorType != "Sandbox.Timedout" || !strings.HasSuffix(e.ErrorMessage, "Error: Task timed out after 1.00 seconds") {
		t.Errorf("timeout: %s", out.Payload)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("timed-out call took %v", took)
	}
	if !strings.Contains(tailLog(t, out), "going to sleep with") {
		t.Errorf("the handler's output before the timeout is not in the log:\n%s", tailLog(t, out))
	}
}

func TestPythonMissingInterpreter(t *testing.T) {
	s := startServer(t)
	for _, id := range []string{"python3.12", "python3.13"} {
		interpreter := "/usr/bin/" + id
		if _, err := os.Stat(interpreter); err == nil {
			continue
		}
		_, err := s.client.CreateFunction(t.Context(), &lambda.CreateFunctionInput{
			FunctionName: aws.String("py-" + strings.ReplaceAll(id, ".", "")), Runtime: types.Runtime(id), Handler: aws.String("app.handler"),
			Role: aws.String(testRole), Code: &types.FunctionCode{ZipFile: zipOf(map[string][]byte{"app.py": []byte("def handler(e, c):\n    return 1\n")})},
		})
		wantAPIError(t, "create "+id, err, "InvalidParameterValueException", 400, id, interpreter+" is missing")
	}
}

// TestPythonThroughBoto3 deploys and invokes a Python function the way a
// boto3 user does, with the image's Python and boto3.
func TestPythonThroughBoto3(t *testing.T) {
	needPython(t)
	run := boto3(t)
	s := startServer(t)
	zipPath := filepath.Join(t.TempDir(), "fn.zip")
	if err := os.WriteFile(zipPath, pythonZip(t, "errors"), 0o644); err != nil {
		t.Fatal(err)
	}
	const script = `
import base64, json, sys
import boto3
from botocore.config import Config

endpoint, zip_path = sys.argv[1:3]
client = boto3.client("lambda", endpoint_url=endpoint, region_name="us-east-1",
                      config=Config(retries={"total_max_attempts": 1}))
with open(zip_path, "rb") as f:
    created = client.create_function(FunctionName="py-boto3", Runtime="python3.11", Handler="app.handler",
                                     Role="arn:aws:iam::000000000000:role/lambda-role", Code={"ZipFile": f.read()})
ok = client.invoke(FunctionName="py-boto3", Payload=json.dumps({}), LogType="Tail")
failed = client.invoke(FunctionName="py-boto3", Payload=json.dumps({"action": "raise"}))
json.dump({
    "runtime": created["Runtime"], "handler": created["Handler"],
    "status": ok["StatusCode"], "payload": json.loads(ok["Payload"].read()),
    "log": base64.b64decode(ok["LogResult"]).decode(),
    "fail_status": failed["StatusCode"], "function_error": failed.get("FunctionError"),
    "fail_payload": json.loads(failed["Payload"].read()),
}, sys.stdout)
`
	out := run("-c", script, s.url, zipPath)
	var r struct {
		Runtime, Handler string
		Status           int
		Payload          struct{ Calls int }
		Log              string
		FailStatus       int     `json:"fail_status"`
		FunctionError    string  `json:"function_error"`
		FailPayload      pyError `json:"fail_payload"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("script printed %q: %v", out, err)
	}
	if r.Runtime != "python3.11" || r.Handler != "app.handler" || r.Status != 200 || r.Payload.Calls != 1 || !strings.Contains(r.Log, "Init Duration") {
		t.Errorf("create + invoke through boto3: %+v", r)
	}
	if r.FailStatus != 200 || r.FunctionError != "Unhandled" || r.FailPayload.ErrorType != "ValueError" || r.FailPayload.ErrorMessage != "boom" || len(r.FailPayload.StackTrace) != 2 {
		t.Errorf("failing invoke through boto3: %+v", r)
	}
}

// Python cold start next to the bare interpreter's start, in the same run:
//
//	go test -run '^$' -bench 'Python' -benchtime 30x ./test/e2e/
var trivialPython = []byte("def handler(event, context):\n    return event\n")

func BenchmarkPythonFloorStart(b *testing.B) {
	needPython(b)
	measure(b, func() {
		if out, err := exec.Command(python311, "-c", "pass").CombinedOutput(); err != nil {
			b.Fatalf("%v %s", err, out)
		}
	})
}

func BenchmarkPythonColdStart(b *testing.B) {
	needPython(b)
	zip := zipOf(map[string][]byte{"app.py": trivialPython})
	measureColdStarts(b, startServer(b), "pycold", func(in *lambda.CreateFunctionInput) {
		in.Runtime, in.Handler, in.Code.ZipFile = types.RuntimePython311, aws.String("app.handler"), zip
	})
}

func BenchmarkPythonWarmInvoke(b *testing.B) {
	needPython(b)
	s := startServer(b)
	s.create("pywarm", func(in *lambda.CreateFunctionInput) {
		in.Runtime, in.Handler, in.Code.ZipFile = types.RuntimePython311, aws.String("app.handler"), zipOf(map[string][]byte{"app.py": trivialPython})
	})
	url := s.url + "/2015-03-31/functions/pywarm/invocations"
	c := signingClient()
	post(b, c, url)
	measure(b, func() {
		post(b, c, url)
	})
}
