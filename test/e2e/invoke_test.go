package e2e

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"icebox/internal/testkit"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

func TestWarmReuseKeepsGlobalsAndTmp(t *testing.T) {
	s := startServer(t)
	s.create("warm", func(in *lambda.CreateFunctionInput) {
		in.Environment = &types.Environment{Variables: map[string]string{"GREETING": "hi", "TZ": "Europe/Paris"}}
	})
	first := s.call("warm", map[string]any{"data": "kept"})
	second := s.call("warm", map[string]any{})
	if first.Calls != 1 || second.Calls != 2 {
		t.Errorf("calls = %d, %d; want 1, 2 (warm reuse keeps globals)", first.Calls, second.Calls)
	}
	if second.Tmp != "kept" {
		t.Errorf("/tmp across calls = %q, want kept", second.Tmp)
	}
	if first.PID != second.PID {
		t.Errorf("runtime pid changed %d → %d", first.PID, second.PID)
	}
	if first.RequestID == second.RequestID || first.RequestID == "" {
		t.Errorf("request ids %q %q", first.RequestID, second.RequestID)
	}
	if first.UID == 0 {
		t.Error("function runs as root")
	}
	if first.DeadlineInMs <= 0 || first.DeadlineInMs > 3000 {
		t.Errorf("deadline in %d ms, want within the 3 s timeout", first.DeadlineInMs)
	}
	if want := "arn:aws:lambda:us-east-1:000000000000:function:warm"; first.FunctionArn != want {
		t.Errorf("invoked arn %q, want %q", first.FunctionArn, want)
	}
	env := first.Env
	want := map[string]string{
		"GREETING": "hi", "TZ": "Europe/Paris", "AWS_LAMBDA_FUNCTION_NAME": "warm", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
		"AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
		"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001", "LAMBDA_TASK_ROOT": "/var/task", "LAMBDA_RUNTIME_DIR": "/var/runtime",
		"_HANDLER": "bootstrap", "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/warm", "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
		"LANG": "en_US.UTF-8",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("env %s = %q, want %q", k, env[k], v)
		}
	}
	if _, ok := env["AWS_EXECUTION_ENV"]; ok {
		t.Error("AWS_EXECUTION_ENV is set for a provided runtime")
	}
	if !strings.HasPrefix(env["AWS_ACCESS_KEY_ID"], "ASIA") || env["AWS_SECRET_ACCESS_KEY"] == "" || env["AWS_SESSION_TOKEN"] == "" {
		t.Errorf("execution role credentials missing: %q", env["AWS_ACCESS_KEY_ID"])
	}
	if !strings.Contains(env["AWS_LAMBDA_LOG_STREAM_NAME"], "/[$LATEST]") || len(env["AWS_LAMBDA_LOG_STREAM_NAME"]) != len("2026/11/25/[$LATEST]")+32 {
		t.Errorf("log stream name %q", env["AWS_LAMBDA_LOG_STREAM_NAME"])
	}
	for k := range env {
		if strings.HasPrefix(k, "ICEBOX") || k == "HOME" && env[k] == os.Getenv("HOME") && env[k] != "" {
			t.Errorf("host variable %s leaked into the function", k)
		}
	}
}

func TestFrozenBetweenCalls(t *testing.T) {
	s := startServer(t)
	s.create("frozen")
	// The function's background goroutine ticks every millisecond. Frozen,
	// it gains (almost) nothing in the half second between calls; running,
	// it would gain ~500. The idle half second is the test, not a wait.
	a := s.call("frozen", map[string]any{})
	time.Sleep(500 * time.Millisecond)
	b := s.call("frozen", map[string]any{})
	if gained := b.Ticks - a.Ticks; gained > 150 {
		t.Errorf("background goroutine advanced %d ticks while the environment was idle; want it frozen", gained)
	}
	// And it runs again once thawed.
	c := s.invoke("frozen", map[string]any{"action": "sleep", "ms": 200})
	if c.FunctionError != nil {
		t.Fatalf("sleep call failed: %s", c.Payload)
	}
	d := s.call("frozen", map[string]any{})
	if gained := d.Ticks - b.Ticks; gained < 50 {
		t.Errorf("background goroutine advanced only %d ticks during a 200 ms call; want it running when thawed", gained)
	}
}

func TestFunctionErrorsAreData(t *testing.T) {
	s := startServer(t)
	s.create("errs")
	e := s.callFail("errs", map[string]any{"action": "fail"})
	if e.ErrorMessage != "failing on request" || e.ErrorType != "errorString" {
		t.Errorf("handler error = %+v", e)
	}
	// The environment survives a handled error.
	if r := s.call("errs", map[string]any{}); r.Calls != 2 {
		t.Errorf("calls after handler error = %d, want 2 (same environment)", r.Calls)
	}

	e = s.callFail("errs", map[string]any{"action": "exit", "code": 3})
	if e.ErrorType != "Runtime.ExitError" || !strings.HasSuffix(e.ErrorMessage, "Error: Runtime exited with error: exit status 3") || !strings.HasPrefix(e.ErrorMessage, "RequestId: ") {
		t.Errorf("exit error = %+v", e)
	}
	if r := s.call("errs", map[string]any{}); r.Calls != 1 {
		t.Errorf("after runtime exit calls = %d, want 1 (new environment)", r.Calls)
	}

	big := s.invoke("errs", map[string]any{"action": "big", "size": 7 << 20})
	if big.FunctionError == nil || !strings.Contains(string(big.Payload), "Function.ResponseSizeTooLarge") ||
		!strings.Contains(string(big.Payload), "Response payload size exceeded maximum allowed payload size (6291556 bytes).") {
		t.Errorf("oversized response: %v %.200s", big.FunctionError, big.Payload)
	}
}

func TestTimeoutKillsEverything(t *testing.T) {
	s := startServer(t)
	s.create("slow", func(in *lambda.CreateFunctionInput) { in.Timeout = aws.Int32(1) })
	start := time.Now()
	e := s.callFail("slow", map[string]any{"action": "orphan"})
	took := time.Since(start)
	if e.ErrorType != "Sandbox.Timedout" || !strings.HasSuffix(e.ErrorMessage, "Error: Task timed out after 1.00 seconds") {
		t.Errorf("timeout error = %+v", e)
	}
	if took > 3*time.Second {
		t.Errorf("timed-out call took %v", took)
	}
	// The SIGTERM-ignoring grandchild must be gone: no `sleep 4711` (a
	// length no other test's processes sleep) anywhere.
	testkit.WaitFor(t, 5*time.Second, "orphaned sleep to disappear", func() bool { return !processRunning("sleep 4711") })
	if r := s.call("slow", map[string]any{}); r.Calls != 1 {
		t.Errorf("after timeout calls = %d, want 1 (new environment)", r.Calls)
	}
}

// processRunning reports whether any process's command line contains s.
func processRunning(s string) bool {
	dirs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range dirs {
		b, err := os.ReadFile(f)
		if err == nil && strings.Contains(strings.ReplaceAll(string(b), "\x00", " "), s) {
			return true
		}
	}
	return false
}

func TestOutOfMemory(t *testing.T) {
	s := startServer(t)
	s.create("hog", func(in *lambda.CreateFunctionInput) { in.Timeout = aws.Int32(30) })
	e := s.callFail("hog", map[string]any{"action": "oom"})
	if e.ErrorType != "Runtime.OutOfMemory" || !strings.HasSuffix(e.ErrorMessage, "Runtime exited with error: signal: killed") {
		t.Errorf("oom error = %+v", e)
	}
	if r := s.call("hog", map[string]any{}); r.Calls != 1 {
		t.Errorf("after OOM calls = %d, want 1 (new environment)", r.Calls)
	}
}

func TestInitFailure(t *testing.T) {
	s := startServer(t)
	s.create("badinit", func(in *lambda.CreateFunctionInput) {
		in.Environment = &types.Environment{Variables: map[string]string{"INIT_EXIT": "1"}}
	})
	e := s.callFail("badinit", map[string]any{})
	if e.ErrorType != "Runtime.ExitError" || !strings.Contains(e.ErrorMessage, "exit status 7") {
		t.Errorf("init failure = %+v", e)
	}
	// Missing bootstrap.
	_, err := s.client.CreateFunction(context.Background(), &lambda.CreateFunctionInput{
		FunctionName: aws.String("noboot"), Runtime: types.RuntimeProvidedal2023, Handler: aws.String("x"),
		Role: aws.String("arn:aws:iam::000000000000:role/r"), Code: &types.FunctionCode{ZipFile: zipOf(map[string][]byte{"hello.txt": []byte("hi")})},
	})
	if err != nil {
		t.Fatal(err)
	}
	e = s.callFail("noboot", map[string]any{})
	if e.ErrorType != "Runtime.InvalidEntrypoint" || !strings.Contains(e.ErrorMessage, "Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]") {
		t.Errorf("missing bootstrap = %+v", e)
	}
}

func TestUpdateStartsNewEnvironment(t *testing.T) {
	s := startServer(t)
	s.create("upd")
	s.call("upd", map[string]any{})
	if r := s.call("upd", map[string]any{}); r.Calls != 2 {
		t.Fatalf("warm calls = %d", r.Calls)
	}
	_, err := s.client.UpdateFunctionConfiguration(context.Background(), &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String("upd"), Environment: &types.Environment{Variables: map[string]string{"VERSION": "2"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := s.call("upd", map[string]any{})
	if r.Calls != 1 || r.Env["VERSION"] != "2" {
		t.Errorf("after config update: calls=%d VERSION=%q; want a new environment with VERSION=2", r.Calls, r.Env["VERSION"])
	}
	_, err = s.client.UpdateFunctionCode(context.Background(), &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("upd"), ZipFile: functionZip(t)})
	if err != nil {
		t.Fatal(err)
	}
	// Same code bytes: Lambda still makes new environments on a code update
	// only when something changed; an identical zip keeps CodeSha256.
	_ = s.call("upd", map[string]any{})
	testkit.WaitFor(t, 5*time.Second, "stale environments to be drained", func() bool {
		return s.d.Environments()["idle"] <= 1
	})
}

func TestIdleEnvironmentsAreReaped(t *testing.T) {
	s := startServer(t, func(c *daemonConfig) { c.IdleTimeout = 300 * time.Millisecond })
	s.create("reap")
	s.call("reap", map[string]any{})
	testkit.WaitFor(t, 5*time.Second, "idle environment to be destroyed", func() bool { return s.d.Environments()["idle"] == 0 })
	if r := s.call("reap", map[string]any{}); r.Calls != 1 {
		t.Errorf("after idle timeout calls = %d, want 1 (cold start)", r.Calls)
	}
}

func TestConcurrentCallsUseSeveralEnvironments(t *testing.T) {
	s := startServer(t)
	s.create("conc")
	const n = 8
	var wg sync.WaitGroup
	pids := make(chan int, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := s.client.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("conc"), Payload: []byte(`{"action":"sleep","ms":300}`)})
			if err != nil || out.FunctionError != nil {
				t.Errorf("invoke: %v %v", err, out)
				return
			}
			pids <- 1
		}()
	}
	wg.Wait()
	close(pids)
	if got := s.d.Environments()["idle"]; got < 2 {
		t.Errorf("%d idle environments after %d parallel calls; want several", got, n)
	}
}

func TestRestartKeepsFunctions(t *testing.T) {
	s := startServer(t)
	s.create("durable")
	s.call("durable", map[string]any{})
	s.restart()
	out, err := s.client.GetFunction(context.Background(), &lambda.GetFunctionInput{FunctionName: aws.String("durable")})
	if err != nil {
		t.Fatal(err)
	}
	if *out.Configuration.FunctionName != "durable" {
		t.Errorf("after restart: %+v", out.Configuration)
	}
	// Unpacked code is a cache: drop it and the code comes back from the engine.
	os.RemoveAll(filepath.Join(s.cfg.DataDir, "code"))
	os.MkdirAll(filepath.Join(s.cfg.DataDir, "code"), 0o755)
	if r := s.call("durable", map[string]any{}); r.Calls != 1 {
		t.Errorf("calls after restart = %d", r.Calls)
	}
}

func TestTailAndClientContext(t *testing.T) {
	s := startServer(t)
	s.create("tail")
	cc := base64.StdEncoding.EncodeToString([]byte(`{"custom":{"k":"v"}}`))
	out := s.invoke("tail", map[string]any{}, func(in *lambda.InvokeInput) {
		in.LogType = types.LogTypeTail
		in.ClientContext = aws.String(cc)
	})
	logs, err := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
	if err != nil {
		t.Fatal(err)
	}
	text := string(logs)
	for _, want := range []string{"START RequestId: ", " Version: $LATEST", "handled  1", "END RequestId: ", "REPORT RequestId: ", "\tDuration: ", "\tBilled Duration: ", "\tMemory Size: 128 MB", "\tMax Memory Used: ", "\tInit Duration: "} {
		if !strings.Contains(text, want) {
			t.Errorf("tail lacks %q:\n%s", want, text)
		}
	}
	if aws.ToString(out.ExecutedVersion) != "$LATEST" {
		t.Errorf("executed version %q", aws.ToString(out.ExecutedVersion))
	}
	if !strings.Contains(string(out.Payload), `"clientContext":{"k":"v"}`) {
		t.Errorf("client context not delivered: %s", out.Payload)
	}
	// A warm call's REPORT has no Init Duration; a large log keeps only the last 4 KB.
	out = s.invoke("tail", map[string]any{"action": "log", "size": 500, "data": "padding-padding"}, func(in *lambda.InvokeInput) { in.LogType = types.LogTypeTail })
	logs, _ = base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
	if len(logs) > 4096 || strings.Contains(string(logs), "Init Duration") || !strings.Contains(string(logs), "line 499 padding") {
		t.Errorf("warm tail (%d bytes):\n%s", len(logs), logs)
	}
}

func TestDryRun(t *testing.T) {
	s := startServer(t)
	s.create("dry")
	out := s.invoke("dry", nil, func(in *lambda.InvokeInput) { in.InvocationType = types.InvocationTypeDryRun })
	if out.StatusCode != 204 {
		t.Errorf("dry run status %d", out.StatusCode)
	}
	if s.d.Environments()["idle"] != 0 {
		t.Error("dry run started an environment")
	}
}

// errorCode extracts the AWS error code the SDK saw.
func errorCode(err error) string {
	var ae interface{ ErrorCode() string }
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return fmt.Sprintf("%v", err)
}
