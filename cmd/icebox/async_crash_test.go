package main

import (
	"encoding/json"
	"fmt"
	"icebox/internal/testkit"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestAsyncEventsSurviveKill9: an event is stored before its 202, so a
// daemon killed outright (no shutdown, embedded JetStream dying with it)
// must still run every accepted event once restarted on the same data dir.
// Delivery is at least once: events in progress at the kill run again, and
// the test reports how many ran twice.
//
// Reserved concurrency keeps part of the queue waiting, so the kill finds
// events of every kind: finished and acked, running (redelivered after the
// consumer's AckWait, shortened here with --async-ack-wait), and
// queued behind throttling (nakked with a delay).
//
// Evidence that an event ran is the EVENT line the function prints when it
// starts, read back through the CloudWatch Logs API. Log lines are stored
// asynchronously and a kill can lose the last few milliseconds of them, but
// an event is acked only once the function returned, 300 ms after its line:
// an event the crashed daemon finished has its line stored.
func TestAsyncEventsSurviveKill9(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	binaries(t)
	const (
		fn       = "slow"
		events   = 40
		reserved = 10
	)
	args := []string{"serve", "--data-dir", t.TempDir(), "--async-retry-delays", "100ms,200ms", "--async-ack-wait", "3s"}
	s := startServer(t, how{}, args...)
	s.createWithEnv(t, fn, build.slowZip, map[string]string{"PRINT_EVENT": "1"})
	putConcurrency(t, s, fn, reserved)
	for i := range events {
		s.invokeEvent(t, fn, fmt.Sprintf(`{"action":"sleep","ms":300,"data":"%d"}`, i))
	}

	// Kill once a first wave has finished and another is running.
	var before map[string]int
	testkit.WaitFor(t, 30*time.Second, "a first wave of events to finish and another to run", func() bool {
		before = ranEvents(t, s, fn)
		return len(before) > reserved && len(before) < events && scrapeMetric(t, s, `icebox_concurrent_executions{function="`+fn+`"}`) > 0
	})
	crashed := record(t, s)
	t.Cleanup(func() { releaseCgroups(t, crashed.cgroups) })
	// The daemon alone, not its group: sandboxes are children it must
	// clean up after a restart.
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-s.done
	t.Logf("SIGKILL with %d of %d events started", len(before), events)

	s = startServer(t, how{}, args...)
	began := time.Now()
	var after map[string]int
	testkit.WaitFor(t, 60*time.Second, fmt.Sprintf("all %d events to run after the restart", events), func() bool {
		after = ranEvents(t, s, fn)
		return len(after) == events
	})
	runs, twice := 0, []int{}
	for i := range events {
		n := after[strconv.Itoa(i)]
		if n == 0 {
			t.Errorf("event %d never ran", i)
		}
		if n > 1 {
			twice = append(twice, i)
		}
		runs += n
	}
	t.Logf("all %d events ran %v after the restart; %d runs, %d duplicates (events run more than once: %v)", events, time.Since(began).Round(time.Millisecond), runs, runs-events, twice)

	checkRestartCleanedUp(t, crashed)
	fp := record(t, s)
	s.signal(syscall.SIGTERM, 10*time.Second)
	checkGone(t, fp, false)
}

// invokeEvent queues event for fn as an asynchronous invocation.
func (s *server) invokeEvent(t *testing.T, fn, event string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.url+"/2015-03-31/functions/"+fn+"/invocations", strings.NewReader(event))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Amz-Invocation-Type", "Event")
	code, body := doRequest(t, req)
	if code != http.StatusAccepted {
		t.Fatalf("Event invoke %s(%s): %d %s, want 202", fn, event, code, body)
	}
}

func putConcurrency(t *testing.T, s *server, fn string, n int) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, s.url+"/2017-10-31/functions/"+fn+"/concurrency",
		strings.NewReader(fmt.Sprintf(`{"ReservedConcurrentExecutions":%d}`, n)))
	if err != nil {
		t.Fatal(err)
	}
	if code, body := doRequest(t, req); code != http.StatusOK {
		t.Fatalf("put concurrency %d on %s: %d %s", n, fn, code, body)
	}
}

// ranEvents counts, by their "data", the events fn logged as received,
// reading its log group through the CloudWatch Logs API page by page.
func ranEvents(t *testing.T, s *server, fn string) map[string]int {
	t.Helper()
	seen := map[string]int{}
	token := ""
	for {
		in, _ := json.Marshal(map[string]string{"logGroupName": "/aws/lambda/" + fn, "filterPattern": "EVENT", "nextToken": token})
		req, err := http.NewRequest(http.MethodPost, s.url+"/", strings.NewReader(string(in)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Amz-Target", "Logs_20140328.FilterLogEvents")
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		code, body := doRequest(t, req)
		if code == http.StatusBadRequest && strings.Contains(string(body), "ResourceNotFoundException") {
			return seen // no line stored yet: the group does not exist
		}
		if code != http.StatusOK {
			t.Fatalf("FilterLogEvents %s: %d %s", fn, code, body)
		}
		var out struct {
			Events    []struct{ Message string }
			NextToken string
		}
		if err := json.Unmarshal(body, &out); err != nil {
			t.Fatalf("FilterLogEvents %s: %v: %s", fn, err, body)
		}
		for _, e := range out.Events {
			raw, ok := strings.CutPrefix(e.Message, "EVENT ")
			if !ok {
				continue
			}
			var ev struct{ Data string }
			if err := json.Unmarshal([]byte(raw), &ev); err != nil {
				t.Fatalf("logged event %q: %v", raw, err)
			}
			seen[ev.Data]++
		}
		if out.NextToken == "" || out.NextToken == token {
			return seen
		}
		token = out.NextToken
	}
}

// scrapeMetric reads one sample from the daemon's /metrics; 0 if absent.
func scrapeMetric(t *testing.T, s *server, sample string) float64 {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.url+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	code, body := doRequest(t, req)
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d", code)
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

func doRequest(t *testing.T, req *http.Request) (int, []byte) {
	t.Helper()
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read response: %v", req.Method, req.URL, err)
	}
	return resp.StatusCode, body
}
