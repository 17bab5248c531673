package e2e

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"icebox/internal/daemon"
	"icebox/internal/testkit"
	"icebox/runtimes"
)

// AWS's own runtime pieces, fetched by the tests from PyPI and Maven
// Central at the versions pinned here and in testdata/java/ric/pom.xml, and
// cached under the host's icebox cache dir (test/), so only the first run
// on a host downloads them.

const awslambdaricVersion = "4.2.2"

// testCache is the directory the tests keep downloads in.
func testCache(t testing.TB, name string) string {
	t.Helper()
	dir := filepath.Join(daemon.DefaultCacheDir(), "test", name)
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

var fetchMu sync.Mutex

// fetched runs fetch into a temporary directory beside dir and renames it
// to dir once it succeeded, so a failed or interrupted download is never
// taken for a cached one. It fails the test saying which registry could
// not be reached.
func fetched(t testing.TB, dir, what string, fetch func(tmp string) ([]byte, error)) string {
	t.Helper()
	fetchMu.Lock()
	defer fetchMu.Unlock()
	if _, err := os.Stat(dir); err == nil {
		return dir
	}
	tmp := dir + ".partial"
	os.RemoveAll(tmp)
	start := time.Now()
	if out, err := fetch(tmp); err != nil {
		os.RemoveAll(tmp)
		t.Fatalf("could not fetch %s (is the registry reachable from this host?): %v\n%s", what, err, out)
	}
	if err := os.Rename(tmp, dir); err != nil {
		t.Fatal(err)
	}
	t.Logf("fetched %s in %v", what, time.Since(start).Round(time.Millisecond))
	return dir
}

// awslambdaric installs AWS's Python runtime interface client (a binary
// wheel, and its dependencies) for python3.11 into a cached directory.
func awslambdaric(t testing.TB) string {
	t.Helper()
	needPython(t)
	return fetched(t, testCache(t, "awslambdaric-"+awslambdaricVersion), "awslambdaric from PyPI", func(tmp string) ([]byte, error) {
		return exec.Command(python311, "-m", "pip", "install", "--disable-pip-version-check", "--no-compile", "--only-binary=:all:",
			"--target", tmp, "awslambdaric=="+awslambdaricVersion).CombinedOutput()
	})
}

// dirFiles reads every file under dir, keyed by its path below prefix.
func dirFiles(t testing.TB, dir, prefix string, into map[string][]byte) {
	t.Helper()
	walkFiles(t, dir, func(rel string, b []byte) {
		if !strings.Contains(rel, "__pycache__") {
			into[prefix+rel] = b
		}
	})
}

// AWS's Python runtime interface client, as a custom runtime: its
// bootstrap serves calls, errors and warm reuse through icebox's Runtime
// API, and its log records (framed on _LAMBDA_TELEMETRY_LOG_FD) stay one
// event each.
func TestAWSPythonRuntimeInterfaceClient(t *testing.T) {
	ric := awslambdaric(t)
	s := startServer(t)
	files := map[string][]byte{
		"bootstrap": []byte("#!/bin/sh\nexport PYTHONPATH=/var/task\nexec " + python311 + " -m awslambdaric \"$_HANDLER\"\n"),
		"app.py": []byte(`import logging, os
logger = logging.getLogger()
logger.setLevel(logging.INFO)
calls = 0

def handler(event, context):
    global calls
    calls += 1
    logger.info("ric line one\nric line two")
    if event.get("fail"):
        raise ValueError("ric boom")
    return {"calls": calls, "pid": os.getpid(), "request_id": context.aws_request_id, "event": event}
`),
	}
	dirFiles(t, ric, "", files)
	s.create("aws-ric-py", func(in *lambda.CreateFunctionInput) {
		in.Runtime, in.Handler, in.Code.ZipFile = types.RuntimeProvidedal2023, aws.String("app.handler"), zipOf(files)
		in.Timeout = aws.Int32(30)
	})
	type answer struct {
		Calls     int            `json:"calls"`
		PID       int            `json:"pid"`
		RequestID string         `json:"request_id"`
		Event     map[string]any `json:"event"`
	}
	var first, second answer
	for i, a := range []*answer{&first, &second} {
		out := s.invoke("aws-ric-py", map[string]any{"n": i})
		if out.FunctionError != nil || json.Unmarshal(out.Payload, a) != nil {
			t.Fatalf("call %d: %v %s", i, out.FunctionError, out.Payload)
		}
	}
	if first.Calls != 1 || second.Calls != 2 || first.PID != second.PID || len(second.RequestID) != 36 || second.Event["n"] != float64(1) {
		t.Errorf("calls %+v then %+v: want one warm environment counting calls", first, second)
	}
	out := s.invoke("aws-ric-py", map[string]any{"fail": true}, func(in *lambda.InvokeInput) { in.LogType = types.LogTypeTail })
	var e pyError
	if out.FunctionError == nil || *out.FunctionError != "Unhandled" || json.Unmarshal(out.Payload, &e) != nil ||
		e.ErrorType != "ValueError" || e.ErrorMessage != "ric boom" || len(e.StackTrace) == 0 {
		t.Errorf("error: %v %s", out.FunctionError, out.Payload)
	}
	if tail := tailLog(t, out); !strings.Contains(tail, "[ERROR] ValueError: ric boom") {
		t.Errorf("tail lacks the client's error record:\n%s", tail)
	}
	var third answer
	if out := s.invoke("aws-ric-py", map[string]any{}); json.Unmarshal(out.Payload, &third) != nil || third.Calls != 4 || third.PID != first.PID {
		t.Errorf("after the error: %s, want the same environment's fourth call", out.Payload)
	}
	logs := cloudwatchlogs.New(cloudwatchlogs.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.url), Credentials: rootCredentials})
	testkit.WaitFor(t, 15*time.Second, "the client's multi-line records as one event each", func() bool {
		res, err := logs.FilterLogEvents(t.Context(), &cloudwatchlogs.FilterLogEventsInput{
			LogGroupName: aws.String("/aws/lambda/aws-ric-py"), FilterPattern: aws.String(`"ric line"`)})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, ev := range res.Events {
			if !strings.Contains(aws.ToString(ev.Message), "ric line one\nric line two") {
				t.Fatalf("a record was split: %q", aws.ToString(ev.Message))
			}
			n++
		}
		return n == 4
	})
}

// mavenPieces copies the jars testdata/java/DIR/pom.xml names and their
// dependencies from Maven Central into a cached directory: ric, AWS's Java
// runtime interface client, aws-lambda-java-core and -events; sdk, the AWS
// SDK for Java v2's Lambda client.
func mavenPieces(t testing.TB, dir string) string {
	t.Helper()
	if _, err := exec.LookPath("mvn"); err != nil {
		t.Fatal("mvn (Maven) is not installed: .ci/run installs it; AWS's Java pieces come from Maven Central through it")
	}
	pom, err := filepath.Abs(filepath.Join("testdata/java", dir, "pom.xml"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(pom)
	if err != nil {
		t.Fatal(err)
	}
	return fetched(t, testCache(t, fmt.Sprintf("maven-%x", sha256.Sum256(b))), "testdata/java/"+dir+"'s jars from Maven Central", func(tmp string) ([]byte, error) {
		return exec.Command("mvn", "-q", "-B", "-Dmaven.repo.local="+testCache(t, "m2"), "-f", pom,
			"dependency:copy-dependencies", "-DoutputDirectory="+tmp).CombinedOutput()
	})
}

// apiGatewayFiles compiles testdata/java/apigw against Maven's
// aws-lambda-java-core and aws-lambda-java-events, with those jars in lib/
// as a Lambda deployment package carries them.
func apiGatewayFiles(t testing.TB, jars string, extra ...string) map[string][]byte {
	t.Helper()
	var cp, lib []string
	ents, err := os.ReadDir(jars)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		cp = append(cp, filepath.Join(jars, e.Name()))
		for _, want := range append([]string{"aws-lambda-java-core-", "aws-lambda-java-events-", "joda-time-"}, extra...) {
			if strings.HasPrefix(e.Name(), want) {
				lib = append(lib, e.Name())
			}
		}
	}
	classes := t.TempDir()
	javac(t, classes, strings.Join(cp, ":"), "testdata/java/apigw")
	files := map[string][]byte{}
	walkFiles(t, classes, func(rel string, b []byte) { files[rel] = b })
	for _, name := range lib {
		b, err := os.ReadFile(filepath.Join(jars, name))
		if err != nil {
			t.Fatal(err)
		}
		files["lib/"+name] = b
	}
	return files
}

// A handler built against Maven's aws-lambda-java-core and
// aws-lambda-java-events (an APIGatewayV2HTTPEvent handler) runs unchanged
// on icebox's java17 runtime and on AWS's Java runtime interface client as
// a custom runtime, which also serves errors and warm reuse.
func TestAWSJavaPieces(t *testing.T) {
	if _, err := os.Stat(javaHome + "/bin/javac"); err != nil {
		t.Skip("no JDK 17 on this host")
	}
	jars := mavenPieces(t, "ric")
	s := startServer(t)
	prepareJava(t, s)
	event := map[string]any{
		"version": "2.0", "routeKey": "$default", "rawPath": "/orders/7", "rawQueryString": "x=1",
		"headers": map[string]string{"content-type": "application/json"}, "queryStringParameters": map[string]string{"x": "1"},
		"body": `{"item":"tea"}`, "isBase64Encoded": false,
		"requestContext": map[string]any{"http": map[string]any{"method": "POST", "path": "/orders/7", "sourceIp": "198.18.0.1"}, "requestId": "r-1"},
	}
	type response struct {
		StatusCode int               `json:"statusCode"`
		Headers    map[string]string `json:"headers"`
		Body       string            `json:"body"`
	}
	check := func(t *testing.T, s *server, name string) response {
		out := s.invoke(name, event)
		var r response
		if out.FunctionError != nil || json.Unmarshal(out.Payload, &r) != nil {
			t.Fatalf("%s: %v %s", name, out.FunctionError, out.Payload)
		}
		if r.StatusCode != 201 || r.Headers["x-path"] != "/orders/7" || !strings.Contains(r.Body, `POST /orders/7 {"item":"tea"}`) {
			t.Errorf("%s: %s", name, out.Payload)
		}
		return r
	}

	t.Run("java17", func(t *testing.T) {
		s := s.in(t)
		zip := zipOf(apiGatewayFiles(t, jars))
		s.create("aws-events-java17", func(in *lambda.CreateFunctionInput) {
			in.Runtime, in.Handler, in.Code.ZipFile, in.MemorySize = types.RuntimeJava17, aws.String("example.Orders::handleRequest"), zip, aws.Int32(512)
		})
		check(t, s, "aws-events-java17")
	})

	t.Run("runtime interface client", func(t *testing.T) {
		s := s.in(t)
		files := apiGatewayFiles(t, jars, "") // every jar: the client and what it needs
		// The client's own launch line, on the host's JDK 17; it reaches
		// _LAMBDA_TELEMETRY_LOG_FD through java.io's internals.
		files["bootstrap"] = []byte("#!/bin/sh\nexec " + javaHome + "/bin/java -XX:+TieredCompilation -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xshare:auto " +
			"--add-opens java.base/java.io=ALL-UNNAMED " +
			"-cp '/var/task:/var/task/lib/*' com.amazonaws.services.lambda.runtime.api.client.AWSLambda \"$_HANDLER\"\n")
		s.create("aws-ric-java", func(in *lambda.CreateFunctionInput) {
			in.Runtime, in.Handler, in.Code.ZipFile, in.MemorySize = types.RuntimeProvidedal2023, aws.String("example.Orders::handleRequest"), zipOf(files), aws.Int32(512)
			in.Timeout = aws.Int32(30)
		})
		first := check(t, s, "aws-ric-java")
		second := check(t, s, "aws-ric-java")
		if first.Headers["x-calls"] != "1" || second.Headers["x-calls"] != "2" {
			t.Errorf("calls %s then %s: want one warm environment counting calls", first.Headers["x-calls"], second.Headers["x-calls"])
		}
		bad := map[string]any{"rawPath": "/fail", "requestContext": map[string]any{"http": map[string]any{"method": "GET"}}}
		out := s.invoke("aws-ric-java", bad)
		var e javaError
		if out.FunctionError == nil || json.Unmarshal(out.Payload, &e) != nil || e.ErrorType != "java.lang.IllegalStateException" || e.ErrorMessage != "refused /fail" {
			t.Errorf("error: %v %s", out.FunctionError, out.Payload)
		}
		if third := check(t, s, "aws-ric-java"); third.Headers["x-calls"] != "4" {
			t.Errorf("after the error: call %s, want the same environment's fourth", third.Headers["x-calls"])
		}
		// The client's log records arrive framed: one event per call, the
		// line alone (its LambdaLogger adds no newline to split on).
		logs := cloudwatchlogs.New(cloudwatchlogs.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.url), Credentials: rootCredentials})
		testkit.WaitFor(t, 15*time.Second, "the client's log records", func() bool {
			res, err := logs.FilterLogEvents(t.Context(), &cloudwatchlogs.FilterLogEventsInput{
				LogGroupName: aws.String("/aws/lambda/aws-ric-java"), FilterPattern: aws.String(`"order /orders/7 for"`)})
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range res.Events {
				if m := aws.ToString(ev.Message); len(m) != len("order /orders/7 for ")+36 {
					t.Fatalf("record %q: want the one log call alone", m)
				}
			}
			return len(res.Events) == 3
		})
	})
}

// A Java function using the AWS SDK for Java v2, configured by nothing but
// Lambda's environment, calls icebox with its role's credentials: what the
// role allows works, what it does not is refused.
func TestJavaSDKv2CallsIcebox(t *testing.T) {
	if _, err := os.Stat(javaHome + "/bin/javac"); err != nil {
		t.Skip("no JDK 17 on this host")
	}
	jars := mavenPieces(t, "sdk")
	s := startServer(t)
	api := runtimes.JavaAPIJar(prepareJava(t, s))
	s.putRole("sdk-reader", `{"Statement":[{"Effect":"Allow","Action":"lambda:GetFunction","Resource":"*"}]}`)
	var cp []string
	files := map[string][]byte{}
	ents, err := os.ReadDir(jars)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		cp = append(cp, filepath.Join(jars, e.Name()))
		b, err := os.ReadFile(filepath.Join(jars, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files["lib/"+e.Name()] = b
	}
	classes := t.TempDir()
	javac(t, classes, strings.Join(append(cp, api), ":"), "testdata/java/sdkfn")
	walkFiles(t, classes, func(rel string, b []byte) { files[rel] = b })
	s.create("java-sdk", func(in *lambda.CreateFunctionInput) {
		in.Runtime, in.Handler, in.Code.ZipFile = types.RuntimeJava17, aws.String("example.Caller::handleRequest"), zipOf(files)
		in.MemorySize, in.Timeout, in.Role = aws.Int32(512), aws.Int32(60), aws.String(roleBase+"sdk-reader")
	})
	out := s.invoke("java-sdk", map[string]any{})
	var r struct {
		FunctionName, Runtime, Denied string
		Deleted                       bool
	}
	if out.FunctionError != nil || json.Unmarshal(out.Payload, &r) != nil {
		t.Fatalf("%v %s", out.FunctionError, out.Payload)
	}
	if r.FunctionName != "java-sdk" || r.Runtime != "java17" || r.Deleted || r.Denied != "AccessDeniedException" {
		t.Errorf("the function saw %s: want itself read, its deletion refused", out.Payload)
	}
}
