package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"icebox/internal/testkit"
)

// Logs as Lambda's runtimes write them, in each managed runtime: one event
// per log call however many lines it has (the runtime client frames it on
// _LAMBDA_TELEMETRY_LOG_FD), INIT_START per environment, and under
// LoggingConfig JSON with ApplicationLogLevel WARN the runtime's own JSON
// records, INFO dropped, found by a JSON filter pattern. The caller's
// X-Amzn-Trace-Id reaches the function (_X_AMZN_TRACE_ID, Java's
// com.amazonaws.xray.traceHeader).
func TestLogFormats(t *testing.T) {
	s := startServer(t)
	logs := cloudwatchlogs.New(cloudwatchlogs.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.url), Credentials: rootCredentials})
	jsonLogs := func(in *lambda.CreateFunctionInput) {
		in.LoggingConfig = &types.LoggingConfig{LogFormat: types.LogFormatJson, ApplicationLogLevel: types.ApplicationLogLevelWarn}
	}
	// events polls the function's log group until pattern finds what done
	// accepts (logs are stored asynchronously).
	events := func(t *testing.T, fn, pattern string, done func([]string) bool) []string {
		t.Helper()
		var msgs []string
		testkit.WaitFor(t, 15*time.Second, "the log events of "+fn, func() bool {
			in := &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String("/aws/lambda/" + fn)}
			if pattern != "" {
				in.FilterPattern = aws.String(pattern)
			}
			out, err := logs.FilterLogEvents(context.Background(), in)
			if err != nil {
				t.Fatalf("FilterLogEvents %s: %v", fn, err)
			}
			msgs = msgs[:0]
			for _, e := range out.Events {
				msgs = append(msgs, aws.ToString(e.Message))
			}
			return done(msgs)
		})
		return msgs
	}
	check := func(t *testing.T, s *server, prefix, requestIDKey string, create func(name string, mutate ...func(*lambda.CreateFunctionInput))) {
		create(prefix + "-text")
		// The caller's X-Amzn-Trace-Id is the call's trace.
		const trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
		out, err := s.client.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String(prefix + "-text"), Payload: []byte(`{"n":1}`)},
			func(o *lambda.Options) {
				o.APIOptions = append(o.APIOptions, smithyhttp.AddHeaderValue("X-Amzn-Trace-Id", trace))
			})
		if err != nil {
			t.Fatal(err)
		}
		if out.FunctionError != nil {
			t.Fatalf("%s: %s", *out.FunctionError, out.Payload)
		}
		if string(out.Payload) != `"`+trace+`"` {
			t.Errorf("the function saw trace %s, want the caller's %s", out.Payload, trace)
		}
		all := events(t, prefix+"-text", "", func(m []string) bool { return strings.Contains(strings.Join(m, "\n"), "REPORT RequestId") })
		var multi, initStart int
		for _, m := range all {
			if strings.Contains(m, "first line\nsecond line") {
				multi++
			}
			if strings.HasPrefix(m, "INIT_START Runtime Version: ") && strings.Contains(m, "\tRuntime Version ARN: arn:aws:lambda:us-east-1::runtime:") {
				initStart++
			}
			if m == "second line" {
				t.Errorf("the second line of a log call is an event of its own")
			}
		}
		if multi != 1 || initStart != 1 {
			t.Errorf("%d events with the multi-line message (want 1), %d INIT_START (want 1):\n%q", multi, initStart, all)
		}
		// A new configuration retires the environment: icebox shuts it down,
		// which makes its runtime write nothing.
		if _, err := s.client.UpdateFunctionConfiguration(context.Background(), &lambda.UpdateFunctionConfigurationInput{
			FunctionName: aws.String(prefix + "-text"), Environment: &types.Environment{Variables: map[string]string{"CHANGED": "1"}}}); err != nil {
			t.Fatal(err)
		}
		s.invoke(prefix+"-text", map[string]int{"n": 2})
		events(t, prefix+"-text", "", func(m []string) bool { return strings.Count(strings.Join(m, "\n"), "REPORT RequestId") == 2 })
		time.Sleep(time.Second) // what the old runtime might still write
		all = events(t, prefix+"-text", "", func([]string) bool { return true })
		for _, m := range all {
			for _, bad := range []string{"Traceback", "Exception", "Runtime API", "exited", "Errno"} {
				if strings.Contains(m, bad) {
					t.Errorf("shutting an environment down logged %q", m)
				}
			}
		}

		create(prefix+"-json", jsonLogs)
		if out := s.invoke(prefix+"-json", map[string]int{"n": 7}); out.FunctionError != nil {
			t.Fatalf("%s: %s", *out.FunctionError, out.Payload)
		}
		errs := events(t, prefix+"-json", `{ $.level = "ERROR" }`, func(m []string) bool { return len(m) > 0 })
		var rec map[string]any
		if len(errs) != 1 || json.Unmarshal([]byte(errs[0]), &rec) != nil {
			t.Fatalf("ERROR records: %q", errs)
		}
		msg, _ := rec["message"].(string)
		ts, _ := rec["timestamp"].(string)
		reqID, _ := rec[requestIDKey].(string)
		if _, err := time.Parse(time.RFC3339Nano, ts); err != nil || !strings.Contains(msg, "json error") || len(reqID) != 36 {
			t.Errorf("ERROR record %s: want timestamp, level, %s and message", errs[0], requestIDKey)
		}
		all = events(t, prefix+"-json", "", func(m []string) bool { return strings.Contains(strings.Join(m, "\n"), "platform.report") })
		joined := strings.Join(all, "\n")
		for _, dropped := range []string{"dropped info", "first line", "plain print", "START RequestId"} {
			if strings.Contains(joined, dropped) {
				t.Errorf("%q logged at ApplicationLogLevel WARN:\n%s", dropped, joined)
			}
		}
		for _, want := range []string{`"type":"platform.initStart"`, `"type":"platform.start"`, `"requestId":"` + reqID + `"`} {
			if !strings.Contains(joined, want) {
				t.Errorf("JSON log lacks %s:\n%s", want, joined)
			}
		}
	}

	t.Run("python", func(t *testing.T) {
		needPython(t)
		s := s.in(t)
		check(t, s, "py", "requestId", func(name string, mutate ...func(*lambda.CreateFunctionInput)) {
			s.create(name, append([]func(*lambda.CreateFunctionInput){withPython(t, "logformat", "app.handler")}, mutate...)...)
		})
		// The CLI finds the same records (the done-when of the issue).
		cli := newAWSCLI(t, s)
		var got struct{ Events []struct{ Message string } }
		cli.json(&got, "logs", "filter-log-events", "--log-group-name", "/aws/lambda/py-json", "--filter-pattern", `{ $.level = "ERROR" }`)
		if len(got.Events) != 1 || !strings.Contains(got.Events[0].Message, `"level": "ERROR"`) {
			t.Errorf("aws logs filter-log-events: %+v", got.Events)
		}
	})
	t.Run("nodejs", func(t *testing.T) {
		needNode(t)
		s := s.in(t)
		check(t, s, "node", "requestId", func(name string, mutate ...func(*lambda.CreateFunctionInput)) {
			s.createNode(name, "logformat.handler", mutate...)
		})
	})
	t.Run("java", func(t *testing.T) {
		s := s.in(t)
		prepareJava(t, s)
		check(t, s, "java", "AWSRequestId", func(name string, mutate ...func(*lambda.CreateFunctionInput)) {
			s.createJava(name, "example.Logs::handleRequest", mutate...)
		})
	})
}

// Without a telemetry descriptor (a runtime started by hand, AWS's emulator)
// the Node.js client keeps each console call one line, its newlines turned
// into \r, as Lambda's does.
func TestNodeConsoleWithoutTelemetry(t *testing.T) {
	needNode(t)
	script := `const l = require(process.argv[1]); l.patchConsole(); l.setRequestId('r-1'); console.log('first\nsecond'); console.error(new Error('boom'));`
	cmd := exec.Command("node", "-e", script, filepath.Join("..", "..", "runtimes", "nodejs", "logging.cjs"))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != 2 || !strings.HasSuffix(lines[0], "\tr-1\tINFO\tfirst\rsecond") || !strings.Contains(lines[1], "\tr-1\tERROR\tError: boom\r    at ") {
		t.Errorf("console output %q: want one line per call", out)
	}
}
