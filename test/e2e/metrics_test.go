package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"icebox/internal/testkit"
)

// metric reads one sample from /metrics; -1 when absent.
func metric(t *testing.T, s *server, name, labels string) float64 {
	t.Helper()
	resp, err := http.Get(s.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name+labels) + ` ([0-9.e+-]+)$`)
	m := re.FindSubmatch(body)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

func TestMetrics(t *testing.T) {
	s := startServer(t)
	s.create("m")
	s.call("m", map[string]any{})
	s.call("m", map[string]any{})
	s.callFail("m", map[string]any{"action": "fail"})
	fn := `{function="m"}`
	checks := map[string]float64{
		"icebox_invocations_total" + fn:             3,
		"icebox_errors_total" + fn:                  1,
		"icebox_duration_seconds_count" + fn:        3,
		"icebox_init_duration_seconds_count" + fn:   1,
		"icebox_concurrent_executions" + fn:         0,
		`icebox_environments{state="idle"}`:         1,
		`icebox_environments{state="busy"}`:         0,
		`icebox_environments{state="initializing"}`: 0,
	}
	for k, want := range checks {
		if got := metric(t, s, k, ""); got != want {
			t.Errorf("%s = %v, want %v", k, got, want)
		}
	}
	// A runtime crash destroys the environment: the gauge follows.
	s.callFail("m", map[string]any{"action": "exit", "code": 1})
	if got := metric(t, s, `icebox_environments{state="idle"}`, ""); got != 0 {
		t.Errorf("idle environments after a crash = %v", got)
	}
}

// TestLogFloodIsBounded: a function writing far more output than the log
// store buffers must not grow the daemon's memory with it, nor cost another
// function its log lines; what the flood loses is counted for it alone.
func TestLogFloodIsBounded(t *testing.T) {
	s := startServer(t)
	s.create("flood", func(in *lambda.CreateFunctionInput) { in.Timeout = aws.Int32(60) })
	s.create("quiet")
	if out := s.invoke("quiet", map[string]any{"action": "log", "size": 20, "data": "quiet before"}); out.FunctionError != nil {
		t.Fatalf("quiet call: %s", out.Payload)
	}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	// 200,000 lines of ~1 KB: about 200 MB through the pipe.
	big := make([]byte, 1000)
	for i := range big {
		big[i] = 'x'
	}
	out := s.invoke("flood", map[string]any{"action": "log", "size": 200000, "data": string(big)})
	if out.FunctionError != nil {
		t.Fatalf("flood call: %s", out.Payload)
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapInuse) - int64(before.HeapInuse); grew > 64<<20 {
		t.Errorf("daemon heap grew %d MiB during a 200 MB log flood", grew>>20)
	}
	if r := s.call("flood", map[string]any{}); r.Calls != 2 {
		t.Errorf("environment did not survive the flood: calls=%d", r.Calls)
	}
	if out := s.invoke("quiet", map[string]any{"action": "log", "size": 20, "data": "quiet after"}); out.FunctionError != nil {
		t.Fatalf("quiet call: %s", out.Payload)
	}

	// The quiet function keeps every line, before and after the flood.
	logs := cloudwatchlogs.New(cloudwatchlogs.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.url), Credentials: rootCredentials})
	count := func(pattern string) int {
		n := 0
		pages := cloudwatchlogs.NewFilterLogEventsPaginator(logs, &cloudwatchlogs.FilterLogEventsInput{
			LogGroupName: aws.String("/aws/lambda/quiet"), FilterPattern: aws.String(pattern),
		})
		for pages.HasMorePages() {
			page, err := pages.NextPage(context.Background())
			if err != nil {
				t.Fatalf("FilterLogEvents quiet: %v", err)
			}
			n += len(page.Events)
		}
		return n
	}
	quietBefore, quietAfter := 0, 0
	kept := false
	defer func() {
		if !kept {
			t.Logf("the quiet function lost lines: %d of 20 before the flood, %d of 20 after", quietBefore, quietAfter)
		}
	}()
	testkit.WaitFor(t, 20*time.Second, "the quiet function's 20 lines from before the flood and 20 from after", func() bool {
		quietBefore, quietAfter = count(`"quiet before"`), count(`"quiet after"`)
		return quietBefore == 20 && quietAfter == 20
	})
	kept = true

	// Drops are counted per function: the flood's, never the quiet one's.
	drops := func(fn string) float64 {
		var n float64
		for _, reason := range []string{"buffer", "budget", "engine"} {
			n += max(0, metric(t, s, "icebox_function_log_lines_dropped_total", fmt.Sprintf(`{function=%q,reason=%q}`, fn, reason)))
		}
		return n
	}
	testkit.WaitFor(t, 20*time.Second, "log lines to be counted as dropped for the flood", func() bool { return drops("flood") > 0 })
	t.Logf("the flood lost %v lines", drops("flood"))
	if d := drops("quiet"); d != 0 {
		t.Errorf("%v log lines counted as dropped for the quiet function", d)
	}
}
