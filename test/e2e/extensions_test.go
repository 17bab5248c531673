package e2e

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"icebox/internal/daemon"
	"icebox/internal/testkit"
)

// Extensions in real sandboxes, shipped in layers under /opt/extensions as
// Lambda ships them: a Go extension written as AWS's sample writes one, a
// Python Telemetry API subscriber, and a shell one that crashes.

// extensionLayer zips files as a layer; everything under extensions/, and
// a wrapper script, is executable.
func extensionLayer(files map[string][]byte) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, data := range files {
		h := &zip.FileHeader{Name: name, Method: zip.Deflate}
		h.SetMode(0o644)
		if strings.HasPrefix(name, "extensions/") || name == "wrapper" {
			h.SetMode(0o755)
		}
		w, _ := zw.CreateHeader(h)
		w.Write(data)
	}
	zw.Close()
	return buf.Bytes()
}

// goExtension is testdata/extension's binary.
func goExtension(t *testing.T) []byte {
	t.Helper()
	z := programZip(t, "extension")
	zr, err := zip.NewReader(bytes.NewReader(z), int64(len(z)))
	if err != nil {
		t.Fatal(err)
	}
	f, err := zr.Open("bootstrap")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// extFn is a Python function that logs a line, waits (at most 5 s) for a
// line in the Telemetry subscriber's record when asked to, and returns its
// request id and what the extensions recorded in /tmp.
const extFn = `import os, time

# The runtime starts after the extensions registered.
REGISTERED_FIRST = os.path.exists("/tmp/ext-registered")

def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""

def handler(event, context):
    print("function line", event.get("n"))
    if event.get("exit"):
        os._exit(3)
    time.sleep(event.get("sleep", 0))
    want = event.get("want")
    deadline = time.time() + 5
    while want and want not in read("/tmp/telemetry-events").splitlines() and time.time() < deadline:
        time.sleep(0.01)
    return {"id": context.aws_request_id, "ext": read("/tmp/ext-events"), "tel": read("/tmp/telemetry-events"),
            "registeredFirst": REGISTERED_FIRST}
`

type extResult struct {
	ID, Ext, Tel    string
	RegisteredFirst bool
}

func (s *server) createExtFn(name string, layer string, env map[string]string) {
	s.create(name, func(in *lambda.CreateFunctionInput) {
		in.Runtime, in.Handler = types.RuntimePython311, aws.String("app.handler")
		in.Code.ZipFile = zipOf(map[string][]byte{"app.py": []byte(extFn)})
		in.Layers = []string{layer}
		in.Environment = &types.Environment{Variables: env}
	})
}

// logCount counts the function's log events matching pattern.
func (s *server) logCount(name, pattern string) int {
	logs := cloudwatchlogs.New(cloudwatchlogs.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.url), Credentials: rootCredentials})
	n := 0
	pages := cloudwatchlogs.NewFilterLogEventsPaginator(logs, &cloudwatchlogs.FilterLogEventsInput{
		LogGroupName: aws.String("/aws/lambda/" + name), FilterPattern: aws.String(pattern)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(context.Background())
		if err != nil {
			return n
		}
		n += len(page.Events)
	}
	return n
}

// The Go extension registers before the runtime starts; it gets INVOKE
// with each call's request id; it works after
// the response (the caller has the answer before it is done) and the next
// call waits for it; it gets SHUTDOWN (spindown) when its environment is
// retired by an update, by idleness and by the function's deletion.
func TestExtensionLifecycle(t *testing.T) {
	needPython(t)
	s := startServer(t, func(c *daemon.Config) { c.IdleTimeout = 2 * time.Second })
	layer := s.publishLayer("go-ext", extensionLayer(map[string][]byte{"extensions/go-ext": goExtension(t)}))
	s.createExtFn("lc", layer, map[string]string{"EXT_WORK_MS": "300"})

	var r1, r2 extResult
	s.pyCall("lc", map[string]any{"n": 1}, &r1)
	answered := time.Now().UnixNano()
	if !r1.RegisteredFirst {
		t.Error("the function's init ran before the extension registered")
	}
	s.pyCall("lc", map[string]any{"n": 2}, &r2)
	var done int64
	for _, line := range strings.Split(r2.Ext, "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "done" && f[1] == r1.ID {
			done, _ = strconv.ParseInt(f[2], 10, 64)
		}
	}
	if !strings.HasPrefix(r2.Ext, "invoke "+r1.ID+"\n") || done == 0 {
		t.Fatalf("the second call ran before the extension was done with the first: %q", r2.Ext)
	}
	if answered > done {
		t.Errorf("the first call was answered only after the extension finished its work")
	}
	if !strings.Contains(r2.Ext, "invoke "+r2.ID) {
		// The INVOKE reaches the extension as the runtime gets the event;
		// the function may read the file first, but then r3 shows it.
		var r3 extResult
		s.pyCall("lc", map[string]any{"n": 3}, &r3)
		if !strings.Contains(r3.Ext, "invoke "+r2.ID) {
			t.Errorf("no INVOKE for %s: %q", r2.ID, r3.Ext)
		}
	}

	// A caller asking for the log (LogType Tail) gets the call's END and
	// REPORT in it: its answer waits for the extension's work.
	out := s.invoke("lc", map[string]any{"n": 9}, func(in *lambda.InvokeInput) { in.LogType = types.LogTypeTail })
	tail, _ := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
	var r9 extResult
	if err := json.Unmarshal(out.Payload, &r9); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(tail), "END RequestId: "+r9.ID) || !strings.Contains(string(tail), "REPORT RequestId: "+r9.ID) {
		t.Errorf("the tail of a call whose extension works on lacks END or REPORT:\n%s", tail)
	}

	shutdowns := func(want int, why string) {
		t.Helper()
		testkit.WaitFor(t, 15*time.Second, "SHUTDOWN logged after "+why, func() bool {
			return s.logCount("lc", `"SHUTDOWN reason=spindown deadline-in-future=true"`) >= want
		})
	}
	if _, err := s.client.UpdateFunctionConfiguration(context.Background(), &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("lc"),
		Environment: &types.Environment{Variables: map[string]string{"EXT_WORK_MS": "0"}}}); err != nil {
		t.Fatal(err)
	}
	shutdowns(1, "the update")
	s.pyCall("lc", map[string]any{"n": 4}, nil)
	shutdowns(2, "the idle timeout")
	s.pyCall("lc", map[string]any{"n": 5}, nil)
	if _, err := s.client.DeleteFunction(context.Background(), &lambda.DeleteFunctionInput{FunctionName: aws.String("lc")}); err != nil {
		t.Fatal(err)
	}
	shutdowns(3, "the deletion")
}

// An environment reset after a call timed out, or after its runtime
// crashed, gives its extensions SHUTDOWN with that reason (Lambda's
// timeout, failure): the runtime alone is killed at the deadline, the
// extension outlives it to be told.
func TestExtensionShutdownOnReset(t *testing.T) {
	needPython(t)
	s := startServer(t)
	layer := s.publishLayer("go-ext", extensionLayer(map[string][]byte{"extensions/go-ext": goExtension(t)}))
	s.create("reset", func(in *lambda.CreateFunctionInput) {
		in.Runtime, in.Handler, in.Timeout = types.RuntimePython311, aws.String("app.handler"), aws.Int32(1)
		in.Code.ZipFile = zipOf(map[string][]byte{"app.py": []byte(extFn)})
		in.Layers = []string{layer}
	})
	for _, tc := range []struct {
		event          map[string]any
		errorType, why string
	}{
		{map[string]any{"sleep": 3}, "Sandbox.Timedout", "timeout"},
		{map[string]any{"exit": true}, "Runtime.ExitError", "failure"},
	} {
		out := s.invoke("reset", tc.event)
		if aws.ToString(out.FunctionError) != "Unhandled" || !bytes.Contains(out.Payload, []byte(tc.errorType)) {
			t.Errorf("%v: %v %s", tc.event, aws.ToString(out.FunctionError), out.Payload)
		}
		testkit.WaitFor(t, 10*time.Second, "SHUTDOWN "+tc.why+" logged", func() bool {
			return s.logCount("reset", `"SHUTDOWN reason=`+tc.why+` deadline-in-future=true"`) == 1
		})
	}
}

// stubbornExtension registers for SHUTDOWN and, given it, never asks for
// the next event: it runs a marked sleep instead.
const stubbornExtension = `#!/usr/bin/env python3
import json, os, sys, urllib.request
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2020-01-01/extension"
req = urllib.request.Request(api + "/register", data=b'{"events":["SHUTDOWN"]}', method="POST",
                             headers={"Lambda-Extension-Name": os.path.basename(sys.argv[0])})
ident = urllib.request.urlopen(req).headers["Lambda-Extension-Identifier"]
while True:
    ev = json.load(urllib.request.urlopen(urllib.request.Request(api + "/event/next", headers={"Lambda-Extension-Identifier": ident})))
    if ev["eventType"] == "SHUTDOWN":
        os.execv("/bin/sleep", ["sleep", "4242.%d" % os.getpid()])
`

// An extension that does not finish its SHUTDOWN within Lambda's budget
// is killed with its environment.
func TestExtensionShutdownBudgetKills(t *testing.T) {
	needPython(t)
	s := startServer(t)
	layer := s.publishLayer("stubborn", extensionLayer(map[string][]byte{"extensions/stubborn": []byte(stubbornExtension)}))
	s.createExtFn("stubborn", layer, nil)
	s.pyCall("stubborn", map[string]any{"n": 1}, nil)
	if _, err := s.client.DeleteFunction(context.Background(), &lambda.DeleteFunctionInput{FunctionName: aws.String("stubborn")}); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "the stubborn extension's SHUTDOWN", func() bool { return processRunning("sleep 4242.") })
	testkit.WaitFor(t, 10*time.Second, "the stubborn extension killed past the budget", func() bool { return !processRunning("sleep 4242.") })
}

// An extension that exits during init fails it as Lambda reports it:
// Extension.Crash, after the init is tried again inside the call.
func TestExtensionCrashFailsInit(t *testing.T) {
	needPython(t)
	s := startServer(t)
	layer := s.publishLayer("crash", extensionLayer(map[string][]byte{"extensions/crasher": []byte("#!/bin/sh\necho crashing\nexit 3\n")}))
	s.createExtFn("crashy", layer, nil)
	out := s.invoke("crashy", map[string]any{})
	if aws.ToString(out.FunctionError) != "Unhandled" || !bytes.Contains(out.Payload, []byte(`"errorType":"Extension.Crash"`)) ||
		!bytes.Contains(out.Payload, []byte("crasher exited: exit status 3")) {
		t.Errorf("invoke: %v %s", aws.ToString(out.FunctionError), out.Payload)
	}
}

// A Telemetry API subscriber gets platform.start, the function's log line,
// platform.runtimeDone and platform.report of every call, in order, and
// what extensions print as extension records; the
// events of a call published after its environment froze arrive after the
// thaw, none lost.
func TestTelemetrySubscriber(t *testing.T) {
	needPython(t)
	sub, err := os.ReadFile("testdata/telemetry-subscriber")
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t)
	layer := s.publishLayer("telemetry", extensionLayer(map[string][]byte{"extensions/telemetry-subscriber": sub}))
	s.createExtFn("tel", layer, nil)
	var ids []string
	var want []string
	var last extResult
	for n := 1; n <= 4; n++ {
		event := map[string]any{"n": n}
		if n > 1 {
			// The report of the last call came after the environment
			// froze: it arrives after this call's thaw.
			event["want"] = "platform.report " + ids[n-2]
		}
		s.pyCall("tel", event, &last)
		ids = append(ids, last.ID)
		if n < 4 {
			want = append(want, "platform.start "+last.ID, fmt.Sprintf("function function line %d", n),
				"platform.runtimeDone "+last.ID, "platform.report "+last.ID)
		}
	}
	var got []string
	for _, line := range strings.Split(last.Tel, "\n") {
		for _, id := range ids[:3] {
			if strings.HasSuffix(line, " "+id) {
				got = append(got, line)
			}
		}
		if strings.HasPrefix(line, "function function line ") && line != "function function line 4" {
			got = append(got, line)
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("subscriber received\n%s\nwant\n%s\n(all: %s)", strings.Join(got, "\n"), strings.Join(want, "\n"), last.Tel)
	}
	if !strings.Contains(last.Tel, "platform.initStart") || !strings.Contains(last.Tel, "platform.telemetrySubscription") {
		t.Errorf("init events missing: %s", last.Tel)
	}
	// An extension's output is its own: extension records, not function.
	if !strings.Contains(last.Tel, "\nextension [subscriber] starting\n") || strings.Contains(last.Tel, "function [subscriber]") {
		t.Errorf("the extension's line is not an extension record: %s", last.Tel)
	}
}

// Internal extensions as Lambda documents them: AWS_LAMBDA_EXEC_WRAPPER
// starts a managed runtime through a wrapper script from a layer, which
// execs the runtime's own command; NODE_OPTIONS reaches Node.js (a
// --require preload from a layer runs before the handler's module).
func TestInternalExtensions(t *testing.T) {
	needPython(t)
	s := startServer(t)
	layer := s.publishLayer("wrap", extensionLayer(map[string][]byte{
		"wrapper":    []byte("#!/bin/sh\nexport WRAPPED=\"by $0, then $1\"\nexec \"$@\"\n"),
		"preload.js": []byte("process.env.PRELOADED = 'yes';\n"),
	}))
	s.create("wrapped", func(in *lambda.CreateFunctionInput) {
		in.Runtime, in.Handler = types.RuntimePython311, aws.String("app.handler")
		in.Code.ZipFile = zipOf(map[string][]byte{"app.py": []byte("import os\n\ndef handler(event, context):\n    return os.environ.get('WRAPPED')\n")})
		in.Layers = []string{layer}
		in.Environment = &types.Environment{Variables: map[string]string{"AWS_LAMBDA_EXEC_WRAPPER": "/opt/wrapper"}}
	})
	var wrapped string
	s.pyCall("wrapped", map[string]any{}, &wrapped)
	if !strings.HasPrefix(wrapped, "by /opt/wrapper, then /") {
		t.Errorf("WRAPPED = %q", wrapped)
	}
	if _, err := os.Stat("/usr/bin/node"); err != nil {
		return
	}
	s.create("preloaded", func(in *lambda.CreateFunctionInput) {
		in.Runtime, in.Handler = types.RuntimeNodejs20x, aws.String("index.handler")
		in.Code.ZipFile = zipOf(map[string][]byte{"index.js": []byte("exports.handler = async () => process.env.PRELOADED;\n")})
		in.Layers = []string{layer}
		in.Environment = &types.Environment{Variables: map[string]string{"NODE_OPTIONS": "--require /opt/preload.js"}}
	})
	if out := s.invoke("preloaded", map[string]any{}); out.FunctionError != nil || string(out.Payload) != `"yes"` {
		t.Errorf("NODE_OPTIONS preload: %v %s", out.FunctionError, out.Payload)
	}
}
