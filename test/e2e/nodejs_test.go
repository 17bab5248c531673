package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"icebox/internal/testkit"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// Node.js functions: handler files under testdata/nodejs/app, written as
// Lambda users write them, run by the nodejs20.x runtime client.

// needNode skips when the host has no Node.js 20 for nodejs20.x.
func needNode(t testing.TB) {
	t.Helper()
	out, err := exec.Command("/usr/bin/node", "--version").Output()
	if err != nil {
		t.Skip("no /usr/bin/node on this host")
	}
	if !strings.HasPrefix(string(out), "v20.") {
		t.Skipf("nodejs20.x needs Node.js 20, the host has %s", out)
	}
}

// nodeDirZip zips every file under dir, paths relative to it.
func nodeDirZip(t testing.TB, dir string) []byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		b, err := os.ReadFile(p)
		files[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return zipOf(files)
}

// createNode deploys testdata/nodejs/app as a nodejs20.x function.
func (s *server) createNode(name, handler string, mutate ...func(*lambda.CreateFunctionInput)) {
	s.t.Helper()
	zip := nodeDirZip(s.t, "testdata/nodejs/app")
	s.create(name, append([]func(*lambda.CreateFunctionInput){func(in *lambda.CreateFunctionInput) {
		in.Runtime = types.RuntimeNodejs20x
		in.Handler = aws.String(handler)
		in.Code.ZipFile = zip
	}}, mutate...)...)
}

// nodeCall invokes name and decodes a successful result into v.
func (s *server) nodeCall(name string, event any, v any) {
	s.t.Helper()
	out := s.invoke(name, event)
	if out.FunctionError != nil {
		s.t.Fatalf("invoke %s: function error %s: %s", name, *out.FunctionError, out.Payload)
	}
	if err := json.Unmarshal(out.Payload, v); err != nil {
		s.t.Fatalf("decode %s: %v", out.Payload, err)
	}
}

// nodeError is the Node.js runtime's error body.
type nodeError struct {
	ErrorType    string   `json:"errorType"`
	ErrorMessage string   `json:"errorMessage"`
	Trace        []string `json:"trace"`
}

func (s *server) callNodeFail(name string, event any) nodeError {
	s.t.Helper()
	out := s.invoke(name, event)
	if out.FunctionError == nil || *out.FunctionError != "Unhandled" {
		s.t.Fatalf("invoke %s: want Unhandled function error, got %v: %s", name, out.FunctionError, out.Payload)
	}
	var e nodeError
	if err := json.Unmarshal(out.Payload, &e); err != nil {
		s.t.Fatalf("decode error %s: %v", out.Payload, err)
	}
	return e
}

func TestNodeAsyncHandlerContextAndWarmReuse(t *testing.T) {
	needNode(t)
	s := startServer(t)
	s.createNode("node-basic", "index.handler", func(in *lambda.CreateFunctionInput) { in.MemorySize = aws.Int32(256) })
	type basic struct {
		Event   map[string]any `json:"event"`
		Calls   int            `json:"calls"`
		Tmp     string         `json:"tmp"`
		PID     int            `json:"pid"`
		Node    string         `json:"node"`
		Context map[string]any `json:"context"`
		Remain  float64        `json:"remaining"`
		Methods []string       `json:"methods"`
		Spread  []string       `json:"spread"`
		TraceID string         `json:"traceId"`
		Env     map[string]string
		Cwd     string `json:"cwd"`
	}
	var first, second basic
	s.nodeCall("node-basic", map[string]any{"data": "kept", "nested": map[string]any{"a": []int{1, 2}}}, &first)
	s.nodeCall("node-basic", map[string]any{}, &second)

	if first.Event["data"] != "kept" || fmt.Sprint(first.Event["nested"]) != "map[a:[1 2]]" {
		t.Errorf("event round trip: %v", first.Event)
	}
	if first.Calls != 1 || second.Calls != 2 || first.PID != second.PID {
		t.Errorf("calls %d, %d pids %d, %d; want a warm environment keeping its globals", first.Calls, second.Calls, first.PID, second.PID)
	}
	if first.Tmp != "" || second.Tmp != "kept" {
		t.Errorf("/tmp: %q then %q, want \"\" then kept", first.Tmp, second.Tmp)
	}
	if !strings.HasPrefix(first.Node, "v20.") {
		t.Errorf("node %s", first.Node)
	}
	c := first.Context
	want := map[string]any{
		"functionName": "node-basic", "functionVersion": "$LATEST", "memoryLimitInMB": "256",
		"invokedFunctionArn": "arn:aws:lambda:us-east-1:000000000000:function:node-basic",
		"logGroupName":       "/aws/lambda/node-basic", "callbackWaitsForEmptyEventLoop": true,
	}
	for k, v := range want {
		if c[k] != v {
			t.Errorf("context.%s = %#v, want %#v", k, c[k], v)
		}
	}
	if id, _ := c["awsRequestId"].(string); len(id) != 36 || id == second.Context["awsRequestId"] {
		t.Errorf("awsRequestId %q then %q", id, second.Context["awsRequestId"])
	}
	if ls, _ := c["logStreamName"].(string); !strings.Contains(ls, "/[$LATEST]") {
		t.Errorf("logStreamName %q", ls)
	}
	if first.Remain <= 0 || first.Remain > 3000 {
		t.Errorf("getRemainingTimeInMillis() = %v, want within the 3 s timeout", first.Remain)
	}
	if strings.Join(first.Methods, ",") != "getRemainingTimeInMillis,succeed,fail,done" || !slices.Equal(first.Spread, first.Methods) {
		t.Errorf("context methods %v, after {...context} %v", first.Methods, first.Spread)
	}
	if !strings.HasPrefix(first.TraceID, "Root=") {
		t.Errorf("_X_AMZN_TRACE_ID = %q", first.TraceID)
	}
	if first.Env["AWS_EXECUTION_ENV"] != "AWS_Lambda_nodejs20.x" || first.Env["LAMBDA_TASK_ROOT"] != "/var/task" || first.Cwd != "/var/task" {
		t.Errorf("env %v cwd %s", first.Env, first.Cwd)
	}
	if !strings.Contains(first.Env["NODE_PATH"], "/opt/nodejs/node_modules") {
		t.Errorf("NODE_PATH %q", first.Env["NODE_PATH"])
	}

	// Large and non-ASCII events make the round trip intact.
	big := strings.Repeat("héllo ✓ 日本 ", 250_000) // 4.5 MB
	var echoed basic
	s.nodeCall("node-basic", map[string]any{"big": big}, &echoed)
	if echoed.Event["big"] != big {
		t.Errorf("large event: got %d bytes back, sent %d", len(fmt.Sprint(echoed.Event["big"])), len(big))
	}

	// Client context and identity arrive parsed.
	cc := base64.StdEncoding.EncodeToString([]byte(`{"custom":{"k":"v"},"env":{"locale":"fr"}}`))
	out := s.invoke("node-basic", map[string]any{}, func(in *lambda.InvokeInput) { in.ClientContext = aws.String(cc) })
	var third basic
	if err := json.Unmarshal(out.Payload, &third); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(third.Context["clientContext"]); got != "map[custom:map[k:v] env:map[locale:fr]]" {
		t.Errorf("clientContext %s", got)
	}
}

func TestNodeHandlerStyles(t *testing.T) {
	needNode(t)
	s := startServer(t)
	cases := []struct {
		name, handler string
		event         any
		want          string
	}{
		{"node-promise", "promise.handler", map[string]int{"n": 21}, `{"doubled":42}`},
		{"node-undefined", "promise.nothing", nil, `null`},
		{"node-callback", "callback.handler", map[string]int{"n": 7}, `{"via":"callback","n":7}`},
		{"node-legacy", "callback.legacy", nil, `{"legacy":true}`},
		{"node-nested", "lib/nested.handler", nil, `{"from":"/var/task/lib/nested.js","name":"node-nested"}`},
		{"node-deep", "lib/nested.deep.handler", nil, `"nested"`},
		{"node-esm", "esm.handler", map[string]string{"name": "esm"}, `"greeting":"hello esm","calls":1`},
		{"node-esmpkg", "esmpkg/app.handler", map[string]int{"x": 1}, `{"module":"esm","base":"app.js","echo":{"x":1}}`},
		{"node-cjs", "settings.handler", nil, `{"cjs":"object"}`},
	}
	for _, c := range cases {
		s.createNode(c.name, c.handler)
	}
	for _, c := range cases {
		out := s.invoke(c.name, c.event)
		if out.FunctionError != nil || !strings.Contains(string(out.Payload), c.want) {
			t.Errorf("%s (%s): %v %s, want %s", c.name, c.handler, aws.ToString(out.FunctionError), out.Payload, c.want)
		}
	}
	// The ES module is evaluated once per environment, top-level await included.
	out := s.invoke("node-esm", map[string]string{"name": "again"})
	if !strings.Contains(string(out.Payload), `"calls":2`) {
		t.Errorf("esm second call: %s", out.Payload)
	}
}

func TestNodeCallbackWaitsForEmptyEventLoop(t *testing.T) {
	needNode(t)
	s := startServer(t)
	s.createNode("node-linger", "callback.lingering")
	s.invoke("node-linger", map[string]bool{"wait": false}) // cold start out of the way

	start := time.Now()
	out := s.invoke("node-linger", map[string]bool{"wait": true})
	waited := time.Since(start)
	if string(out.Payload) != `{"waited":true}` || waited < 350*time.Millisecond {
		t.Errorf("callbackWaitsForEmptyEventLoop=true: %s after %v; want the 400 ms timer awaited", out.Payload, waited)
	}
	start = time.Now()
	out = s.invoke("node-linger", map[string]bool{"wait": false})
	if took := time.Since(start); string(out.Payload) != `{"waited":false}` || took > 300*time.Millisecond {
		t.Errorf("callbackWaitsForEmptyEventLoop=false: %s after %v; want the answer at once", out.Payload, took)
	}
}

func TestNodeErrorShapes(t *testing.T) {
	needNode(t)
	s := startServer(t)
	for _, h := range []string{"throws", "custom", "syncThrow", "string", "circular"} {
		s.createNode("node-err-"+strings.ToLower(h), "errors."+h)
	}
	s.createNode("node-err-cb", "callback.failing")

	e := s.callNodeFail("node-err-throws", nil)
	if e.ErrorType != "Error" || e.ErrorMessage != "something broke" || len(e.Trace) < 2 ||
		e.Trace[0] != "Error: something broke" || !strings.Contains(e.Trace[1], "/var/task/errors.js") {
		t.Errorf("thrown Error: %+v", e)
	}
	e = s.callNodeFail("node-err-custom", map[string]string{"field": "email"})
	if e.ErrorType != "ValidationError" || e.ErrorMessage != "field email is required" || e.Trace[0] != "ValidationError: field email is required" {
		t.Errorf("custom error: %+v", e)
	}
	if e = s.callNodeFail("node-err-syncthrow", nil); e.ErrorType != "RangeError" || e.ErrorMessage != "out of range" {
		t.Errorf("synchronous throw: %+v", e)
	}
	if e = s.callNodeFail("node-err-cb", map[string]int{"n": 3}); e.ErrorType != "TypeError" || e.ErrorMessage != "bad input: 3" {
		t.Errorf("callback(err): %+v", e)
	}
	if e = s.callNodeFail("node-err-string", nil); e.ErrorType != "string" || e.ErrorMessage != "just a string" || e.Trace == nil {
		t.Errorf("thrown string: %+v", e)
	}
	if e = s.callNodeFail("node-err-circular", nil); e.ErrorMessage != "Unable to stringify response body" {
		t.Errorf("circular result: %+v", e)
	}
	// The environment survives an error the handler returned.
	var r struct{ Calls int }
	if s.nodeCall("node-err-throws", map[string]bool{"ok": true}, &r); r.Calls != 2 {
		t.Errorf("calls after an error = %d, want 2 (same environment)", r.Calls)
	}
}

// Lambda's Node.js runtime exits after reporting an error nobody caught
// (exit 128 for a rejection, 129 for an exception), so the environment is
// not reused.
func TestNodeUncaughtErrorsEndTheRuntime(t *testing.T) {
	needNode(t)
	s := startServer(t)
	s.createNode("node-unhandled", "errors.unhandled")
	s.createNode("node-uncaught", "errors.uncaught")
	running := func() bool { return processRunning("/var/runtime/index.cjs") }

	e := s.callNodeFail("node-unhandled", nil)
	if e.ErrorType != "Runtime.UnhandledPromiseRejection" || e.ErrorMessage != "Error: nobody waits for me" ||
		len(e.Trace) < 2 || e.Trace[0] != "Runtime.UnhandledPromiseRejection: Error: nobody waits for me" {
		t.Errorf("unhandled rejection: %+v", e)
	}
	testkit.WaitFor(t, 5*time.Second, "the runtime to exit", func() bool { return !running() })

	e = s.callNodeFail("node-uncaught", nil)
	if e.ErrorType != "SyntaxError" || e.ErrorMessage != "thrown from a timer" {
		t.Errorf("uncaught exception: %+v", e)
	}
	testkit.WaitFor(t, 5*time.Second, "the runtime to exit", func() bool { return !running() })
}

func TestNodeInitErrors(t *testing.T) {
	needNode(t)
	s := startServer(t)
	cases := []struct {
		handler, typ, msg string
	}{
		{"missing.handler", "Runtime.ImportModuleError", "Error: Cannot find module 'left-pad-that-is-not-there'\nRequire stack:\n- /var/task/missing.js\n- /var/runtime/index.cjs"},
		{"nothere.handler", "Runtime.ImportModuleError", "Error: Cannot find module 'nothere'\nRequire stack:\n- /var/runtime/index.cjs"},
		{"index.nope", "Runtime.HandlerNotFound", "index.nope is undefined or not exported"},
		{"lib/nested.deep.nope", "Runtime.HandlerNotFound", "lib/nested.deep.nope is undefined or not exported"},
		{"broken.handler", "Runtime.UserCodeSyntaxError", "SyntaxError: Unexpected token ';'"},
		{"esmpkg/broken.handler", "Runtime.UserCodeSyntaxError", "SyntaxError: Unexpected token ';'"},
		{"index", "Runtime.MalformedHandlerName", "Bad handler"},
		{"../etc/passwd.handler", "Runtime.MalformedHandlerName", "'../etc/passwd.handler' is not a valid handler name. Use absolute paths when specifying root directories in handler names."},
	}
	for i, c := range cases {
		name := fmt.Sprintf("node-init-%d", i)
		s.createNode(name, c.handler)
		e := s.callNodeFail(name, nil)
		if e.ErrorType != c.typ || e.ErrorMessage != c.msg || len(e.Trace) == 0 || !strings.HasPrefix(e.Trace[0], c.typ+": ") {
			t.Errorf("%s: %+v\nwant %s: %q", c.handler, e, c.typ, c.msg)
		}
	}
	// The syntax error's trace points at the line.
	e := s.callNodeFail("node-init-4", nil)
	if !strings.Contains(strings.Join(e.Trace, "\n"), "/var/task/broken.js:2") {
		t.Errorf("syntax error trace lacks the location: %q", e.Trace)
	}
}

func TestNodeLogs(t *testing.T) {
	needNode(t)
	s := startServer(t)
	s.createNode("node-logs", "logs.handler")
	out := s.invoke("node-logs", map[string]int{"n": 5}, func(in *lambda.InvokeInput) { in.LogType = types.LogTypeTail })
	logs, err := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
	if err != nil {
		t.Fatal(err)
	}
	text := string(logs)
	for _, want := range []string{
		"\tINFO\thello from node { n: 5 }\n", "\tINFO\tan info line\n", "\tWARN\ta warning\n", "\tERROR\tan error line\n",
		"raw stdout\n", "START RequestId: ", "END RequestId: ", "REPORT RequestId: ",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("log lacks %q:\n%s", want, text)
		}
	}
	// Each console line carries an ISO timestamp and the request id.
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, "\tINFO\thello from node") {
			f := strings.Split(line, "\t")
			if _, err := time.Parse(time.RFC3339Nano, f[0]); err != nil || len(f[1]) != 36 || !strings.Contains(text, "START RequestId: "+f[1]) {
				t.Errorf("console line %q: want timestamp, request id, level, message", line)
			}
		}
	}
}

func TestNodeTimeout(t *testing.T) {
	needNode(t)
	s := startServer(t)
	s.createNode("node-slow", "slow.handler", func(in *lambda.CreateFunctionInput) { in.Timeout = aws.Int32(1) })
	start := time.Now()
	e := s.callNodeFail("node-slow", nil)
	if e.ErrorType != "Sandbox.Timedout" || !strings.HasSuffix(e.ErrorMessage, "Error: Task timed out after 1.00 seconds") {
		t.Errorf("timeout: %+v", e)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("timed-out call took %v", took)
	}
}

func TestNodeOutOfMemory(t *testing.T) {
	needNode(t)
	s := startServer(t)
	s.createNode("node-hog", "hog.handler", func(in *lambda.CreateFunctionInput) { in.Timeout = aws.Int32(30) })
	e := s.callNodeFail("node-hog", map[string]bool{"hog": true})
	// V8 gives up at its heap limit (abort) or the cgroup kills it first.
	if e.ErrorType != "Runtime.OutOfMemory" && e.ErrorType != "Runtime.ExitError" {
		t.Errorf("out of memory: %+v", e)
	}
	t.Logf("out of memory: %+v", e)
	var r struct{ Calls int }
	s.nodeCall("node-hog", map[string]bool{}, &r)
	if r.Calls != 1 {
		t.Errorf("after running out of memory calls = %d, want 1 (new environment)", r.Calls)
	}
}

// The host's global npm directory is on the default NODE_PATH: a package
// installed there with `npm install -g` (the AWS SDK, say) is reachable
// from every function. npm itself lives there on hosts that have it.
func TestNodeGlobalModules(t *testing.T) {
	needNode(t)
	out, err := exec.Command("npm", "root", "-g").Output()
	if err != nil {
		t.Skip("no npm on this host")
	}
	global := strings.TrimSpace(string(out))
	if _, err := os.Stat(filepath.Join(global, "npm", "package.json")); err != nil || !strings.HasPrefix(global, "/usr/") {
		t.Skipf("npm's global root %s is not under /usr or holds no npm", global)
	}
	s := startServer(t)
	s.createNode("node-paths", "paths.handler")
	var r struct{ Resolved, Error string }
	s.nodeCall("node-paths", map[string]string{"module": "npm/package.json"}, &r)
	if r.Resolved != filepath.Join(global, "npm", "package.json") {
		t.Errorf("require.resolve('npm/package.json') = %+v, want it under %s", r, global)
	}
	var missing struct{ Resolved, Error string }
	s.nodeCall("node-paths", map[string]string{"module": "no-such-package-anywhere"}, &missing)
	if missing.Error != "MODULE_NOT_FOUND" {
		t.Errorf("missing package: %+v", missing)
	}
}

// TestNodeAWSSDK installs the AWS SDK for JavaScript v3 from npm and uses
// it from a function: bundled in the zip's node_modules, and from a
// layer-like directory reached through NODE_PATH (as /opt/nodejs and the
// host's global npm directory are), by require and by import.
func TestNodeAWSSDK(t *testing.T) {
	t.Parallel()
	needNode(t)
	if testing.Short() {
		t.Skip("installs from npm")
	}
	dir := t.TempDir()
	cmd := exec.Command("npm", "install", "--prefix", dir, "--no-audit", "--no-fund", "--loglevel=error", "@aws-sdk/client-lambda@3")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("npm install @aws-sdk/client-lambda: %v\n%s", err, out)
	}
	files := map[string][]byte{
		"sdk.js": []byte(`
const { LambdaClient, ListFunctionsCommand } = require('@aws-sdk/client-lambda');
const { version } = require('@aws-sdk/client-lambda/package.json');
exports.handler = async () => {
  const client = new LambdaClient({});
  const cmd = new ListFunctionsCommand({ MaxItems: 1 });
  return { version, region: await client.config.region(), command: cmd.constructor.name, via: require.resolve('@aws-sdk/client-lambda') };
};`),
		// Not sdk.mjs: Lambda tries sdk.js first.
		"sdkesm.mjs": []byte(`
import { LambdaClient, GetFunctionCommand } from '@aws-sdk/client-lambda';
export const handler = async () => {
  const client = new LambdaClient({});
  return { region: await client.config.region(), command: new GetFunctionCommand({ FunctionName: 'f' }).constructor.name };
};`),
	}
	sdk := filepath.Join(dir, "node_modules")
	bundled, layered := map[string][]byte{}, map[string][]byte{}
	for k, v := range files {
		bundled[k], layered[k] = v, v
	}
	err := filepath.WalkDir(sdk, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		b, err := os.ReadFile(p)
		bundled[filepath.ToSlash(rel)] = b
		layered["layer/nodejs/"+filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t)
	bz, lz := zipOf(bundled), zipOf(layered)
	mk := func(name, handler string, zip []byte, env map[string]string) {
		s.create(name, func(in *lambda.CreateFunctionInput) {
			in.Runtime, in.Handler, in.Code.ZipFile, in.Timeout = types.RuntimeNodejs20x, aws.String(handler), zip, aws.Int32(10)
			if env != nil {
				in.Environment = &types.Environment{Variables: env}
			}
		})
	}
	layerEnv := map[string]string{"NODE_PATH": "/var/task/layer/nodejs/node_modules"}
	mk("sdk-cjs", "sdk.handler", bz, nil)
	mk("sdk-esm", "sdkesm.handler", bz, nil)
	mk("sdk-layer-cjs", "sdk.handler", lz, layerEnv)
	mk("sdk-layer-esm", "sdkesm.handler", lz, layerEnv)

	var cjs struct{ Version, Region, Command, Via string }
	s.nodeCall("sdk-cjs", nil, &cjs)
	if !strings.HasPrefix(cjs.Version, "3.") || cjs.Region != "us-east-1" || cjs.Command != "ListFunctionsCommand" || !strings.HasPrefix(cjs.Via, "/var/task/node_modules/") {
		t.Errorf("bundled SDK, require: %+v", cjs)
	}
	t.Logf("@aws-sdk/client-lambda %s", cjs.Version)
	s.nodeCall("sdk-layer-cjs", nil, &cjs)
	if cjs.Region != "us-east-1" || !strings.HasPrefix(cjs.Via, "/var/task/layer/nodejs/node_modules/") {
		t.Errorf("SDK through NODE_PATH, require: %+v", cjs)
	}
	for _, name := range []string{"sdk-esm", "sdk-layer-esm"} {
		var esm struct{ Region, Command string }
		s.nodeCall(name, nil, &esm)
		if esm.Region != "us-east-1" || esm.Command != "GetFunctionCommand" {
			t.Errorf("%s, import: %+v", name, esm)
		}
	}
}

// Cold start of a trivial Node.js function (CommonJS and ES module) against
// the bare interpreter's start in the same run, and warm invoke latency
// (compare BenchmarkWarmInvoke, provided.al2023). Run:
//
//	go test -run '^$' -bench 'Node|WarmInvoke$' -benchtime 50x ./test/e2e/
func BenchmarkNodeFloorStart(b *testing.B) {
	needNode(b)
	measure(b, func() {
		// The sandbox's environment, not the host's (NODE_OPTIONS,
		// NODE_EXTRA_CA_CERTS would slow the floor down).
		cmd := exec.Command("/usr/bin/node", "-e", "0")
		cmd.Env = []string{}
		if err := cmd.Run(); err != nil {
			b.Fatal(err)
		}
	})
}

// nodeTrivial is the smallest handler of each module kind.
var nodeTrivial = map[string]map[string][]byte{
	"cjs": {"index.js": []byte("exports.handler = async (event) => event;\n")},
	"esm": {"index.mjs": []byte("export const handler = async (event) => event;\n")},
}

func BenchmarkNodeColdStart(b *testing.B) {
	needNode(b)
	for _, kind := range []string{"cjs", "esm"} {
		b.Run(kind, func(b *testing.B) {
			zip := zipOf(nodeTrivial[kind])
			measureColdStarts(b, startServer(b), "nodecold", func(in *lambda.CreateFunctionInput) {
				in.Runtime, in.Handler, in.Code.ZipFile = types.RuntimeNodejs20x, aws.String("index.handler"), zip
			})
		})
	}
}

func BenchmarkNodeWarmInvoke(b *testing.B) {
	needNode(b)
	s := startServer(b)
	s.create("nodewarm", func(in *lambda.CreateFunctionInput) {
		in.Runtime, in.Handler, in.Code.ZipFile = types.RuntimeNodejs20x, aws.String("index.handler"), zipOf(nodeTrivial["cjs"])
	})
	url := s.url + "/2015-03-31/functions/nodewarm/invocations"
	c := signingClient()
	post(b, c, url)
	measure(b, func() {
		post(b, c, url)
	})
}

// TestNodeProvidedSDK: a nodejs20.x function that bundles no SDK requires
// and imports @aws-sdk/client-lambda, installed by icebox from the pins in
// runtimes/sdk/nodejs on the runtime's first use, and lists functions with
// its role's credentials against icebox; a function bundling its own
// client-lambda gets that one, as on Lambda.
func TestNodeProvidedSDK(t *testing.T) {
	needNode(t)
	s := startServer(t)
	s.putRole("lister", `{"Statement":[{"Effect":"Allow","Action":"lambda:ListFunctions","Resource":"*"}]}`)
	list := []byte(`
const { LambdaClient, ListFunctionsCommand } = require('@aws-sdk/client-lambda');
const { version } = require('@aws-sdk/client-lambda/package.json');
exports.handler = async () => {
  const out = await new LambdaClient({}).send(new ListFunctionsCommand({}));
  return { version, via: require.resolve('@aws-sdk/client-lambda'), names: out.Functions.map((f) => f.FunctionName).sort() };
};`)
	esm := []byte(`
import { LambdaClient, ListFunctionsCommand } from '@aws-sdk/client-lambda';
import { S3Client } from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
export const handler = async () => {
  const out = await new LambdaClient({}).send(new ListFunctionsCommand({}));
  return { names: out.Functions.map((f) => f.FunctionName).sort(), s3: typeof S3Client, doc: typeof DynamoDBDocumentClient };
};`)
	mk := func(name, handler string, files map[string][]byte) {
		s.create(name, func(in *lambda.CreateFunctionInput) {
			in.Runtime, in.Handler, in.Code.ZipFile, in.Timeout = types.RuntimeNodejs20x, aws.String(handler), zipOf(files), aws.Int32(30)
			in.Role = aws.String("arn:aws:iam::000000000000:role/lister")
		})
	}
	mk("sdk-list", "list.handler", map[string][]byte{"list.js": list})
	mk("sdk-list-esm", "list.handler", map[string][]byte{"list.mjs": esm})
	mk("sdk-own", "list.handler", map[string][]byte{
		"list.js": []byte(`exports.handler = async () => ({ version: require('@aws-sdk/client-lambda/package.json').version, via: require.resolve('@aws-sdk/client-lambda') });`),
		"node_modules/@aws-sdk/client-lambda/package.json": []byte(`{"name":"@aws-sdk/client-lambda","version":"3.0.0","main":"index.js"}`),
		"node_modules/@aws-sdk/client-lambda/index.js":     []byte(`exports.bundled = true;`),
	})
	b, err := os.ReadFile("../../runtimes/sdk/nodejs/package.json")
	if err != nil {
		t.Fatal(err)
	}
	var manifest struct{ Dependencies map[string]string }
	if err := json.Unmarshal(b, &manifest); err != nil {
		t.Fatal(err)
	}
	want := []string{"sdk-list", "sdk-list-esm", "sdk-own"}
	var r struct {
		Version, Via string
		Names        []string
	}
	s.nodeCall("sdk-list", nil, &r)
	if r.Version != manifest.Dependencies["@aws-sdk/client-lambda"] || !strings.HasPrefix(r.Via, "/var/runtime/node_modules/@aws-sdk/client-lambda/") ||
		strings.Join(r.Names, ",") != strings.Join(want, ",") {
		t.Errorf("provided SDK, require: %+v, want client-lambda %s from /var/runtime/node_modules listing %v", r, manifest.Dependencies["@aws-sdk/client-lambda"], want)
	}
	var e struct {
		Names   []string
		S3, Doc string
	}
	s.nodeCall("sdk-list-esm", nil, &e)
	if strings.Join(e.Names, ",") != strings.Join(want, ",") || e.S3 != "function" || e.Doc != "function" {
		t.Errorf("provided SDK, import: %+v", e)
	}
	var own struct{ Version, Via string }
	s.nodeCall("sdk-own", nil, &own)
	if own.Version != "3.0.0" || own.Via != "/var/task/node_modules/@aws-sdk/client-lambda/index.js" {
		t.Errorf("bundled client-lambda: %+v", own)
	}
}
