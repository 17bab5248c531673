package pool

import (
	"context"
	"encoding/binary"
	"slices"
	"strings"
	"testing"
	"time"

	"icebox/internal/auth"
	"icebox/internal/model"
	"icebox/internal/sandbox/sandboxtest"
)

// The runtime learns the function's log format, level and group from
// Lambda's variables, and gets Lambda's X-Ray and search-path defaults.
func TestLoggingEnvironment(t *testing.T) {
	for _, tc := range []struct {
		runtime string
		logging *model.LoggingConfig
		want    []string
		absent  []string
	}{
		{"provided.al2023", nil,
			[]string{"AWS_LAMBDA_LOG_FORMAT=Text", "AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/f", "AWS_XRAY_CONTEXT_MISSING=LOG_ERROR",
				"AWS_XRAY_DAEMON_ADDRESS=169.254.79.129:2000", "PATH=/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin",
				"_LAMBDA_TELEMETRY_LOG_FD=3"},
			[]string{"AWS_LAMBDA_LOG_LEVEL", "PYTHONPATH"}},
		{"python3.12", &model.LoggingConfig{LogFormat: "JSON", ApplicationLogLevel: "WARN", LogGroup: "/shared/app"},
			[]string{"AWS_LAMBDA_LOG_FORMAT=JSON", "AWS_LAMBDA_LOG_LEVEL=WARN", "AWS_LAMBDA_LOG_GROUP_NAME=/shared/app", "PYTHONPATH=/var/runtime"}, nil},
		{"nodejs20.x", &model.LoggingConfig{LogFormat: "JSON"}, []string{"AWS_LAMBDA_LOG_LEVEL=INFO"}, []string{"PYTHONPATH"}},
	} {
		fn := function("f")
		fn.Runtime, fn.Logging = tc.runtime, tc.logging
		env := envVars(&fn, "us-east-1", "stream", initOnDemand, auth.Credentials{})
		for _, w := range tc.want {
			if !slices.Contains(env, w) {
				t.Errorf("%s %+v: no %s in %v", tc.runtime, tc.logging, w, env)
			}
		}
		for _, a := range tc.absent {
			if slices.ContainsFunc(env, func(kv string) bool { return len(kv) > len(a) && kv[:len(a)+1] == a+"=" }) {
				t.Errorf("%s %+v: %s set", tc.runtime, tc.logging, a)
			}
		}
	}
	// A user's own PATH and X-Ray settings win, as on Lambda.
	fn := function("f")
	fn.Environment = map[string]string{"PATH": "/mine", "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR"}
	env := envVars(&fn, "us-east-1", "stream", initOnDemand, auth.Credentials{})
	if !slices.Contains(env, "PATH=/mine") || !slices.Contains(env, "AWS_XRAY_CONTEXT_MISSING=IGNORE_ERROR") {
		t.Errorf("user overrides lost: %v", env)
	}
}

// frame is a record as AWS's runtime clients write it to
// _LAMBDA_TELEMETRY_LOG_FD: type (level, JSON or text), length, time.
func frame(level int, jsonFormat bool, msg string) []byte {
	typ := uint32(0xA55A0000 | level<<2 | 3)
	if jsonFormat {
		typ--
	}
	b := binary.BigEndian.AppendUint32(nil, typ)
	b = binary.BigEndian.AppendUint32(b, uint32(len(msg)))
	b = binary.BigEndian.AppendUint64(b, uint64(time.Now().UnixMicro()))
	return append(b, msg...)
}

// logsRuntime answers every call after writing a multi-line text frame,
// a DEBUG and an ERROR JSON frame, a plain line and a JSON line at WARN.
func logsRuntime(ctx context.Context, sb *sandboxtest.Sandbox) {
	for ctx.Err() == nil {
		id, _, err := sb.Next(ctx)
		if err != nil {
			return
		}
		sb.WriteTelemetry(frame(0, false, "multi\nline\ttext\n"))
		sb.WriteTelemetry(frame(2, true, `{"level":"DEBUG","message":"debug frame"}`))
		sb.WriteTelemetry(frame(5, true, `{"level":"ERROR","message":"error frame"}`))
		sb.Log("plain line\n")
		sb.Log(`{"level":"warn","msg":"warn line"}` + "\n")
		if sb.Respond(ctx, id, "response", []byte(`1`)) != nil {
			return
		}
	}
}

// One frame is one event, however many lines it holds; under JSON the
// function's ApplicationLogLevel drops what is below it (frames by their
// level, lines by their "level" field, else as INFO) and platform records
// are Telemetry API events, SystemLogLevel filtering them.
func TestFramedLogsAndLevels(t *testing.T) {
	for _, tc := range []struct {
		logging    *model.LoggingConfig
		want, drop []string
	}{
		{nil, []string{"INIT_START Runtime Version: provided:al2023\tRuntime Version ARN: arn:aws:lambda:us-east-1::runtime:", "START RequestId: ",
			"multi\nline\ttext", `"debug frame"`, `"error frame"`, "plain line", "warn line", "END RequestId: ", "REPORT RequestId: "}, nil},
		{&model.LoggingConfig{LogFormat: "JSON", ApplicationLogLevel: "WARN"},
			[]string{`{"time":"`, `"type":"platform.initStart","record":{"`, `"runtimeVersion":"provided:al2023"`, `"type":"platform.start","record":{"requestId":"req-`,
				`"type":"platform.report","record":{"metrics":{"durationMs":`, `"billedDurationMs":`, `"status":"success"`, `"error frame"`, "warn line"},
			[]string{"multi", "debug frame", "plain line", "platform.runtimeDone", "START RequestId"}},
		{&model.LoggingConfig{LogFormat: "JSON", ApplicationLogLevel: "TRACE", SystemLogLevel: "WARN"},
			[]string{"multi\nline\ttext", "debug frame", "plain line"}, []string{"platform."}},
	} {
		p, _ := newPool(t, Config{}, always(logsRuntime))
		sink := p.logs.(*logLines)
		fn := function("f")
		fn.Logging = tc.logging
		res := invoke(t, p, fn, `{}`)
		sink.mu.Lock()
		all := "\n--\n" + strings.Join(sink.lines, "\n--\n") + "\n--\n"
		sink.mu.Unlock()
		for _, w := range tc.want {
			if !strings.Contains(all, w) {
				t.Errorf("%+v: no %q in the log:\n%s", tc.logging, w, all)
			}
		}
		for _, d := range tc.drop {
			if strings.Contains(all, d) {
				t.Errorf("%+v: %q in the log:\n%s", tc.logging, d, all)
			}
		}
		if !strings.Contains(all, "\n--\nmulti\nline\ttext\n--\n") && tc.logging.ApplicationLevel() != "WARN" {
			t.Errorf("%+v: the multi-line frame is not one event:\n%s", tc.logging, all)
		}
		if tail := string(res.LogTail); !strings.Contains(tail, "error frame") {
			t.Errorf("%+v: tail %q", tc.logging, tail)
		}
	}
}

// A failed init still logs the call: INIT_START, the init's report, then
// START, END and REPORT with the error, and the tail shows them.
func TestFailedInitLogsTheCall(t *testing.T) {
	p, f := newPool(t, Config{}, always(initFails))
	res := invoke(t, p, function("f"), `{}`)
	if res.FunctionError == "" {
		t.Fatalf("a failed init answered %s", res.Payload)
	}
	tail := string(res.LogTail)
	id := "RequestId: "
	want := []string{"INIT_START Runtime Version: ", "INIT_REPORT Init Duration: ", "\tPhase: invoke\tStatus: error\tError Type: Runtime.ImportModuleError",
		"START " + id, "END " + id, "REPORT " + id, "\tStatus: error\tError Type: Runtime.ImportModuleError"}
	at := 0
	for _, w := range want {
		i := strings.Index(tail[at:], w)
		if i < 0 {
			t.Fatalf("tail lacks %q after byte %d:\n%s", w, at, tail)
		}
		at += i + len(w)
	}
	if strings.Contains(tail, "Phase: init\t") {
		t.Errorf("the first attempt's records are in the call's tail:\n%s", tail)
	}
	if n := len(f.Made()); n != 2 {
		t.Errorf("%d environments, want 2 (init, then again within the call)", n)
	}
	for _, sb := range f.Made() {
		waitDone(t, sb, "the failed environment to be destroyed")
	}
}

// A frame the runtime leaves half written holds the call's end for a
// second at most.
func TestHalfFrameDoesNotHoldTheCall(t *testing.T) {
	p, _ := newPool(t, Config{}, always(func(ctx context.Context, sb *sandboxtest.Sandbox) {
		id, _, err := sb.Next(ctx)
		if err != nil {
			return
		}
		sb.WriteTelemetry(frame(0, false, "complete"))
		sb.WriteTelemetry(frame(0, false, "never finished")[:20])
		sb.Respond(ctx, id, "response", []byte(`1`))
		<-ctx.Done()
	}))
	res := invoke(t, p, function("f"), `{}`)
	if !strings.Contains(string(res.LogTail), "complete") || !strings.Contains(string(res.LogTail), "REPORT RequestId") {
		t.Errorf("tail %q", res.LogTail)
	}
}
