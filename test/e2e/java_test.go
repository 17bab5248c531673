package e2e

import (
	"archive/zip"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"icebox/internal/testkit"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"icebox/internal/daemon"
	"icebox/runtimes"
)

// Java functions run icebox's Java client (runtimes/java) on the host's
// JDK 17. The handlers under testdata/java/fn are ordinary Lambda Java
// code, compiled here with javac against the API jar icebox builds.

const javaHome = "/usr/lib/jvm/java-17-openjdk-amd64"

// prepareJava compiles the Java client into s's runtime directory, as
// daemon.Start does once it calls runtimes.PrepareJava after
// runtimes.Extract; a second call only relinks the cached output.
func prepareJava(t testing.TB, s *server) string {
	t.Helper()
	if _, err := os.Stat(javaHome + "/bin/javac"); err != nil {
		t.Skip("no JDK 17 on this host")
	}
	dir := filepath.Join(s.cfg.DataDir, "runtime")
	start := time.Now()
	if err := runtimes.PrepareJava(dir, daemon.DefaultCacheDir()); err != nil {
		t.Fatal(err)
	}
	t.Logf("PrepareJava took %v", time.Since(start))
	return dir
}

var javaZipBytes []byte

// javaZip compiles testdata/java/fn against the API jar, with
// testdata/java/lib packed as lib/greeting.jar, and zips it the way Lambda's
// Java packages are laid out: classes at the root, jars in lib/.
func javaZip(t testing.TB, apiJar string) []byte {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if javaZipBytes != nil {
		return javaZipBytes
	}
	work := t.TempDir()
	libClasses := filepath.Join(work, "lib-classes")
	javac(t, libClasses, "", "testdata/java/lib")
	libJar := zipDir(t, libClasses)
	libJarPath := filepath.Join(work, "greeting.jar")
	if err := os.WriteFile(libJarPath, libJar, 0o644); err != nil {
		t.Fatal(err)
	}
	classes := filepath.Join(work, "classes")
	javac(t, classes, apiJar+":"+libJarPath, "testdata/java/fn")
	files := map[string][]byte{"lib/greeting.jar": libJar}
	walkFiles(t, classes, func(rel string, b []byte) { files[rel] = b })
	javaZipBytes = zipOf(files)
	return javaZipBytes
}

// javac compiles every .java file under srcDir into out.
func javac(t testing.TB, out, classpath, srcDir string) {
	t.Helper()
	var srcs []string
	filepath.WalkDir(srcDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".java") {
			srcs = append(srcs, p)
		}
		return err
	})
	args := []string{"-J-XX:TieredStopAtLevel=1", "-J-XX:+UseSerialGC", "-encoding", "UTF-8", "--release", "17", "-d", out}
	if classpath != "" {
		args = append(args, "-cp", classpath)
	}
	cmd := exec.Command(javaHome+"/bin/javac", append(args, srcs...)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("javac %s: %v\n%s", srcDir, err, b)
	}
}

func walkFiles(t testing.TB, dir string, fn func(rel string, b []byte)) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fn(filepath.ToSlash(rel), b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// zipDir zips the files under dir (a jar needs no manifest on a class path).
func zipDir(t testing.TB, dir string) []byte {
	files := map[string][]byte{}
	walkFiles(t, dir, func(rel string, b []byte) { files[rel] = b })
	return zipOf(files)
}

// in returns s reporting to t, for use in t's subtests.
func (s *server) in(t testing.TB) *server {
	c := *s
	c.t = t
	return &c
}

// createJava creates a java17 function running handler from javaZip.
func (s *server) createJava(name, handler string, mutate ...func(*lambda.CreateFunctionInput)) {
	s.t.Helper()
	in := &lambda.CreateFunctionInput{
		FunctionName: aws.String(name),
		Runtime:      types.RuntimeJava17,
		Handler:      aws.String(handler),
		MemorySize:   aws.Int32(512),
		Role:         aws.String("arn:aws:iam::000000000000:role/lambda-role"),
		Code:         &types.FunctionCode{ZipFile: javaZip(s.t, runtimes.JavaAPIJar(filepath.Join(s.cfg.DataDir, "runtime")))},
	}
	for _, m := range mutate {
		m(in)
	}
	if _, err := s.client.CreateFunction(context.Background(), in); err != nil {
		s.t.Fatalf("create %s: %v", name, err)
	}
}

// invokeRaw invokes name with a raw payload and returns the output.
func (s *server) invokeRaw(name, payload string, mutate ...func(*lambda.InvokeInput)) *lambda.InvokeOutput {
	s.t.Helper()
	return s.invoke(name, json.RawMessage(payload), mutate...)
}

// javaError is the Java runtime's error body.
type javaError struct {
	ErrorMessage string   `json:"errorMessage"`
	ErrorType    string   `json:"errorType"`
	StackTrace   []string `json:"stackTrace"`
}

func (s *server) javaFail(name, payload string) (javaError, string) {
	s.t.Helper()
	out := s.invokeRaw(name, payload)
	if out.FunctionError == nil || *out.FunctionError != "Unhandled" {
		s.t.Fatalf("invoke %s: want Unhandled function error, got %v: %s", name, out.FunctionError, out.Payload)
	}
	var e javaError
	if err := json.Unmarshal(out.Payload, &e); err != nil {
		s.t.Fatalf("decode error %s: %v", out.Payload, err)
	}
	return e, string(out.Payload)
}

func (s *server) javaCall(name, payload string, mutate ...func(*lambda.InvokeInput)) string {
	s.t.Helper()
	out := s.invokeRaw(name, payload, mutate...)
	if out.FunctionError != nil {
		s.t.Fatalf("invoke %s: function error %s: %s", name, *out.FunctionError, out.Payload)
	}
	return string(out.Payload)
}

// TestJavaClientUnits checks the client's JSON and object mapping directly,
// without a sandbox.
func TestJavaClientUnits(t *testing.T) {
	if _, err := os.Stat(javaHome + "/bin/javac"); err != nil {
		t.Skip("no JDK 17 on this host")
	}
	dir := t.TempDir()
	if err := runtimes.PrepareJava(dir, daemon.DefaultCacheDir()); err != nil {
		t.Fatal(err)
	}
	jar := filepath.Join(dir, "java", "runtime.jar")
	unit := filepath.Join(t.TempDir(), "unit")
	javac(t, unit, jar, "testdata/java/unit")
	out, err := exec.Command(javaHome+"/bin/java", "-cp", jar+":"+unit, "icebox.runtime.MapperCheck").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("MapperCheck: %v\n%s", err, out)
	}
	// The API jar holds Lambda's interfaces, built for Java 8 class files.
	zr, err := zip.OpenReader(runtimes.JavaAPIJar(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	names := map[string]bool{}
	for _, f := range zr.File {
		names[f.Name] = true
		if strings.HasPrefix(f.Name, "icebox/") {
			t.Errorf("API jar carries runtime internals: %s", f.Name)
		}
		if strings.HasSuffix(f.Name, ".class") {
			r, err := f.Open()
			if err != nil {
				t.Fatal(err)
			}
			head := make([]byte, 8)
			_, err = io.ReadFull(r, head)
			r.Close()
			// Class file major version 52 is Java 8.
			if err != nil || head[6] != 0 || head[7] != 52 {
				t.Errorf("%s: class file header % x, want Java 8 (major 52)", f.Name, head)
			}
		}
	}
	for _, c := range []string{"Context", "LambdaLogger", "RequestHandler", "RequestStreamHandler", "ClientContext", "CognitoIdentity", "Client"} {
		if !names["com/amazonaws/services/lambda/runtime/"+c+".class"] {
			t.Errorf("API jar lacks %s", c)
		}
	}
	// The class-data archive was recorded and is named in the JVM options.
	args, err := os.ReadFile(filepath.Join(dir, "java", "jvm-17.args"))
	if err != nil || !strings.Contains(string(args), "-XX:SharedArchiveFile=/var/runtime/runtime-17.jsa") {
		t.Errorf("jvm-17.args: %v\n%s", err, args)
	}
	// A second prepare of the same sources links the cached output.
	if err := runtimes.PrepareJava(dir, daemon.DefaultCacheDir()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "java", "runtime.jar")); err != nil {
		t.Error(err)
	}
}

func TestJavaHandlers(t *testing.T) {
	s := startServer(t)
	prepareJava(t, s)

	t.Run("pojo", func(t *testing.T) {
		s := s.in(t)
		s.createJava("jhello", "example.Hello::handleRequest")
		cc := base64.StdEncoding.EncodeToString([]byte(`{"custom":{"k":"v"},"env":{"platform":"Android"}}`))
		event := `{"name":"icébox","count":3,"ratio":0.5,"tags":["a","b"],"address":{"city":"Paris","zip":75001},"loud":true,"extra":{"ignored":[1]}}`
		out := s.invokeRaw("jhello", event, func(in *lambda.InvokeInput) {
			in.ClientContext = aws.String(cc)
			in.LogType = types.LogTypeTail
		})
		if out.FunctionError != nil {
			t.Fatalf("function error: %s", out.Payload)
		}
		var r map[string]any
		if err := json.Unmarshal(out.Payload, &r); err != nil {
			t.Fatalf("%v: %s", err, out.Payload)
		}
		want := map[string]any{
			"greeting": "Hello, icébox!", "calls": 1.0, "functionName": "jhello", "functionVersion": "$LATEST",
			"invokedFunctionArn": "arn:aws:lambda:us-east-1:000000000000:function:jhello", "memoryLimitInMB": 512.0,
			"logGroupName": "/aws/lambda/jhello", "executionEnv": "AWS_Lambda_java17", "city": "Paris", "zip": 75001.0,
			"loud": true, "count": 3.0, "ratio": 0.5, "clientCustom": "v", "sharedArchive": true,
		}
		for k, v := range want {
			if r[k] != v {
				t.Errorf("%s = %v, want %v", k, r[k], v)
			}
		}
		if fmt.Sprint(r["tags"]) != "[a b]" {
			t.Errorf("tags = %v", r["tags"])
		}
		if ms, _ := r["remainingTimeInMillis"].(float64); ms <= 0 || ms > 3000 {
			t.Errorf("remainingTimeInMillis = %v, want within the 3 s timeout", r["remainingTimeInMillis"])
		}
		if id, _ := r["requestId"].(string); len(id) < 32 {
			t.Errorf("requestId = %v", r["requestId"])
		}
		if s, _ := r["logStreamName"].(string); !strings.Contains(s, "/[$LATEST]") {
			t.Errorf("logStreamName = %v", r["logStreamName"])
		}
		if _, ok := r["nothing"]; ok {
			t.Errorf("null property written: %s", out.Payload)
		}
		logs, _ := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
		if !strings.Contains(string(logs), "handling icébox\n") {
			t.Errorf("LambdaLogger line missing from the log:\n%s", logs)
		}

		// Warm: same JVM, statics kept, a new request id.
		var r2 map[string]any
		json.Unmarshal([]byte(s.javaCall("jhello", `{"name":"again"}`)), &r2)
		if r2["calls"] != 2.0 || r2["loadedAt"] != r["loadedAt"] || r2["requestId"] == r["requestId"] {
			t.Errorf("warm call: calls=%v loadedAt %v→%v requestId %v→%v", r2["calls"], r["loadedAt"], r2["loadedAt"], r["requestId"], r2["requestId"])
		}
		if _, ok := r2["tags"]; ok {
			t.Errorf("unset list written: %v", r2)
		}

		// An event that does not fit the input type.
		e, _ := s.javaFail("jhello", `"just a string"`)
		if e.ErrorType != "java.lang.RuntimeException" || e.ErrorMessage != "An error occurred during JSON parsing" {
			t.Errorf("bad input: %+v", e)
		}
	})

	t.Run("RequestHandler", func(t *testing.T) {
		s := s.in(t)
		s.createJava("jmap", "example.MapHandler")
		got := s.javaCall("jmap", `{"n":1,"list":[1,2],"nested":{"a":"b"},"text":"hi"}`)
		if want := `"calls=1 keys=[n, list, nested, text] n=Integer:1 list=List[1, 2] nested=Map{a=b} text=hi"`; got != want {
			t.Errorf("got %s\nwant %s", got, want)
		}
		if got := s.javaCall("jmap", `{}`); !strings.HasPrefix(got, `"calls=2 `) {
			t.Errorf("warm call: %s", got)
		}
	})

	t.Run("jar in a layer", func(t *testing.T) { s.in(t).javaLayer() })

	t.Run("RequestStreamHandler", func(t *testing.T) {
		s := s.in(t)
		s.createJava("jupper", "example.Upper")
		if got := s.javaCall("jupper", `{"msg":"héllo"}`); got != `{"MSG":"HÉLLO"}` {
			t.Errorf("got %s", got)
		}
	})

	t.Run("signatures", func(t *testing.T) {
		s := s.in(t)
		for _, c := range []struct{ method, event, want string }{
			{"noArgs", `{}`, `"no args"`},
			{"contextOnly", `{}`, `"context jm-contextOnly"`},
			{"sum", `[1,2,3]`, `6`},
			{"echo", `"hi \"there\""`, `"hi \"there\""`},
			{"orders", `{"k":[{"id":"x","qty":2,"notes":["n"]},{"id":"y"}]}`, `{"k":[{"id":"x","qty":2,"notes":["n"]},{"id":"y","qty":0}]}`},
			{"record", `{"id":"r","qty":"7","unknown":true}`, `{"id":"r","qty":7}`},
			{"nothing", `{}`, `null`},
			{"streams", `{"a":1}`, `[{"a":1}]`},
			{"pick", `"x"`, `"with context"`},
		} {
			name := "jm-" + c.method
			s.createJava(name, "example.Methods::"+c.method)
			if got := s.javaCall(name, c.event); got != c.want {
				t.Errorf("%s(%s) = %s, want %s", c.method, c.event, got, c.want)
			}
		}
	})
}

func TestJavaErrors(t *testing.T) {
	s := startServer(t)
	prepareJava(t, s)

	t.Run("exception", func(t *testing.T) {
		s := s.in(t)
		s.createJava("jfail", "example.Fail::handleRequest")
		e, raw := s.javaFail("jfail", `{"kind":"state"}`)
		if e.ErrorType != "java.lang.IllegalStateException" || e.ErrorMessage != "state is wrong" {
			t.Errorf("error = %s", raw)
		}
		if len(e.StackTrace) < 2 || !strings.HasPrefix(e.StackTrace[0], "example.Fail.check(Fail.java:") ||
			!strings.HasPrefix(e.StackTrace[1], "example.Fail.handleRequest(Fail.java:") {
			t.Errorf("stackTrace = %q", e.StackTrace)
		}
		// As on Lambda: the handler's frames end the trace, without the
		// runtime's, nor the reflection frames through which it called them.
		if last := e.StackTrace[len(e.StackTrace)-1]; !strings.HasPrefix(last, "example.Fail.handleRequest(") {
			t.Errorf("stackTrace ends with %q, want the handler's frame: %q", last, e.StackTrace)
		}
		for _, f := range e.StackTrace {
			if strings.HasPrefix(f, "icebox.") || strings.Contains(f, "reflect.") {
				t.Errorf("runtime or reflection frame in the stack trace: %q", e.StackTrace)
			}
		}
		if e, raw := s.javaFail("jfail", `{"kind":"npe"}`); e.ErrorType != "java.lang.NullPointerException" {
			t.Errorf("npe = %s", raw)
		}
		if e, raw := s.javaFail("jfail", `{"kind":"error"}`); e.ErrorType != "java.lang.AssertionError" || e.ErrorMessage != "custom error" {
			t.Errorf("error = %s", raw)
		}
		// The environment survives the handler's exceptions.
		if got := s.javaCall("jfail", `{"kind":"fine"}`); got != `"ok fine"` {
			t.Errorf("after errors: %s", got)
		}
		if n := s.d.Environments()["idle"]; n != 1 {
			t.Errorf("%d idle environments, want the one that served every call", n)
		}
	})

	t.Run("load faults", func(t *testing.T) {
		s := s.in(t)
		for _, c := range []struct{ handler, msg, typ string }{
			{"example.Missing::handleRequest", "Class not found: example.Missing", "java.lang.ClassNotFoundException"},
			{"example.Missing", "Class not found: example.Missing", "java.lang.ClassNotFoundException"},
			{"example.Hello::nope", "No public method named nope with appropriate method signature found on class example.Hello", ""},
			{"example.Methods::notAHandler", "No public method named notAHandler with appropriate method signature found on class example.Methods", ""},
			{"example.Hello", "Class does not implement an appropriate handler interface: example.Hello", ""},
			{"example.Hello::", "Invalid handler: `example.Hello::'", ""},
		} {
			name := fmt.Sprintf("jbad%d", len(c.handler))
			s.createJava(name, c.handler)
			e, raw := s.javaFail(name, `{}`)
			if e.ErrorMessage != c.msg || e.ErrorType != c.typ || e.StackTrace != nil {
				t.Errorf("%s: %s\nwant message %q type %q", c.handler, raw, c.msg, c.typ)
			}
			// As on Lambda these are not init failures: the environment stays
			// up and fails each call the same way.
			if e2, _ := s.javaFail(name, `{}`); e2.ErrorMessage != c.msg {
				t.Errorf("%s second call: %+v", c.handler, e2)
			}
			s.client.DeleteFunction(context.Background(), &lambda.DeleteFunctionInput{FunctionName: aws.String(name)})
		}
	})

	t.Run("init failures", func(t *testing.T) {
		s := s.in(t)
		s.createJava("jbadinit", "example.BadInit::handleRequest")
		if e, raw := s.javaFail("jbadinit", `"x"`); e.ErrorType != "java.lang.ExceptionInInitializerError" || e.ErrorMessage != "Error loading class example.BadInit" {
			t.Errorf("static initialiser: %s", raw)
		}
		s.createJava("jbadctor", "example.BadConstructor")
		if e, raw := s.javaFail("jbadctor", `"x"`); e.ErrorType != "java.lang.UnsupportedOperationException" || e.ErrorMessage != "no database configured" {
			t.Errorf("constructor: %s", raw)
		}
		if n := s.d.Environments()["idle"]; n > 1 {
			t.Errorf("%d idle environments after init failures", n)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		s := s.in(t)
		s.createJava("jslow", "example.Fail::handleRequest", func(in *lambda.CreateFunctionInput) { in.Timeout = aws.Int32(2) })
		start := time.Now()
		e, raw := s.javaFail("jslow", `{"kind":"sleep","ms":10000}`)
		if e.ErrorType != "Sandbox.Timedout" || !strings.HasSuffix(e.ErrorMessage, "Error: Task timed out after 2.00 seconds") {
			t.Errorf("timeout: %s", raw)
		}
		if took := time.Since(start); took > 6*time.Second {
			t.Errorf("timed-out call took %v", took)
		}
		if got := s.javaCall("jslow", `{"kind":"sleep","ms":10}`); got != `"slept"` {
			t.Errorf("after timeout: %s", got)
		}
	})

	t.Run("heap exhausted", func(t *testing.T) {
		s := s.in(t)
		s.createJava("jhog", "example.Fail::handleRequest", func(in *lambda.CreateFunctionInput) {
			in.MemorySize = aws.Int32(256)
			in.Timeout = aws.Int32(30)
		})
		e, raw := s.javaFail("jhog", `{"kind":"oom"}`)
		// The heap cap (85 % of memory) is hit before the sandbox's limit:
		// the JVM reports it as the handler's error, then the environment ends.
		if e.ErrorType != "java.lang.OutOfMemoryError" || e.ErrorMessage != "Java heap space" {
			t.Errorf("oom: %s", raw)
		}
		// The runtime then ends the environment, as Lambda's does: the JVM
		// (the only one with a 217 MB heap) goes away.
		testkit.WaitFor(t, 5*time.Second, "the JVM to exit after OutOfMemoryError", func() bool { return !processRunning("-XX:MaxHeapSize=217m") })
		// The next call runs on a fresh environment, even if the pool hands
		// it to the dead one first (the event was never taken, so it moves).
		if got := s.javaCall("jhog", `{"kind":"after"}`); got != `"ok after"` {
			t.Errorf("after oom: %s", got)
		}
	})
}

// Benchmarks (go test -run '^$' -bench Java ./test/e2e/):
//
//	BenchmarkFloorJavaVersion  `java -version` on the host, the bare JVM start
//	BenchmarkJavaColdStart     first invoke of a fresh java17 function (sandbox + JVM + init + call)
//	BenchmarkJavaWarmInvoke    warm invoke of the same trivial handler

// benchMemory gives benchmark functions the memory (and so the CPU weight)
// of the provided.al2023 benchmarks' functions, for like-for-like numbers.
func benchMemory(in *lambda.CreateFunctionInput) { in.MemorySize = aws.Int32(128) }

func BenchmarkFloorJavaVersion(b *testing.B) {
	if _, err := os.Stat(javaHome + "/bin/java"); err != nil {
		b.Skip("no JDK 17")
	}
	measure(b, func() {
		if err := exec.Command(javaHome+"/bin/java", "-version").Run(); err != nil {
			b.Fatal(err)
		}
	})
}

func BenchmarkJavaColdStart(b *testing.B) {
	s := startServer(b)
	prepareJava(b, s)
	c := signingClient()
	measureFresh(b, func(i int) func() {
		if i > 0 {
			// Keep one Java environment alive at a time, as the host's memory wants.
			s.client.DeleteFunction(context.Background(), &lambda.DeleteFunctionInput{FunctionName: aws.String(fmt.Sprintf("jcold%d", i-1))})
		}
		name := fmt.Sprintf("jcold%d", i)
		s.createJava(name, "example.Trivial", benchMemory)
		url := s.url + "/2015-03-31/functions/" + name + "/invocations"
		return func() { post(b, c, url) }
	})
}

func BenchmarkJavaWarmInvoke(b *testing.B) {
	s := startServer(b)
	prepareJava(b, s)
	s.createJava("jwarm", "example.Trivial", benchMemory)
	url := s.url + "/2015-03-31/functions/jwarm/invocations"
	c := signingClient()
	// Let C1 compile the hot paths before measuring, as a busy function would.
	for i := 0; i < 2000; i++ {
		post(b, c, url)
	}
	measure(b, func() {
		post(b, c, url)
	})
}
