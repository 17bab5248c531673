package e2e

import (
	"context"
	"fmt"
	"icebox/internal/testkit"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"icebox/internal/auth/authtest"
)

// Asynchronous invocation benchmarks:
//
//	BenchmarkAsyncAccept        Event invocations accepted per second (202 after the
//	                            event is stored in JetStream), 16 clients at once
//	BenchmarkAsyncQueueToStart  idle latency from an Event invocation to the function
//	                            starting on it, one event at a time
//
// Run:
//
//	go test -run '^$' -bench AsyncAccept -benchtime 2000x ./test/e2e/
//	go test -run '^$' -bench AsyncQueueToStart -benchtime 100x ./test/e2e/

// asyncClients is how many callers post events at once in BenchmarkAsyncAccept.
const asyncClients = 16

// postEvent sends one Event invocation and returns when it is accepted.
func postEvent(c *http.Client, url, event string) error {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(event))
	if err != nil {
		return err
	}
	req.Header.Set("X-Amz-Invocation-Type", "Event")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("Event invoke: %d %s, want 202", resp.StatusCode, body)
	}
	return nil
}

// BenchmarkAsyncAccept measures the accept path alone: parse, resolve,
// durable write to the EVENTS stream (the 202 waits for JetStream's ack),
// answer. The function has reserved concurrency 0, so no event runs; the
// dispatcher still takes events off the queue and puts them back with a
// throttle backoff, which competes for the same CPUs, as it would on a
// busy host. Reported: events/s over the whole run, and each call's p50/p99.
func BenchmarkAsyncAccept(b *testing.B) {
	s := startServer(b)
	s.create("held")
	ctx := context.Background()
	if _, err := s.client.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("held"), ReservedConcurrentExecutions: aws.Int32(0)}); err != nil {
		b.Fatal(err)
	}
	url := s.url + "/2015-03-31/functions/held/invocations"
	// One kept-alive connection per client: Go's default keeps only two idle
	// per host, and the rest would be dialled anew on every call.
	c := &http.Client{Transport: authtest.Transport(&http.Transport{MaxIdleConnsPerHost: asyncClients})}
	defer c.CloseIdleConnections()
	if err := postEvent(c, url, `{"data":"warm"}`); err != nil {
		b.Fatal(err)
	}

	lat := make(latencies, b.N)
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	b.ResetTimer()
	began := time.Now()
	for range asyncClients {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N || failed.Load() != nil {
					return
				}
				t := time.Now()
				if err := postEvent(c, url, `{"data":"`+strconv.Itoa(i)+`"}`); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
				lat[i] = time.Since(t)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(began)
	b.StopTimer()
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	lat.report(b)
	// Every 202 is a stored event.
	if got := scrapeMetric(b, s, `icebox_async_events_received_total{function="held"}`); got != float64(b.N+1) {
		b.Errorf("icebox_async_events_received_total = %v, want %d", got, b.N+1)
	}
}

// BenchmarkAsyncQueueToStart measures, with the daemon idle and the
// function's environment warm (and so frozen), how long an event takes from
// the caller sending it to the function running it.
//
// Method: the function (testdata/fn with PRINT_EVENT=1) prints "EVENT <event>"
// first thing in its handler; the daemon timestamps each line as it reads
// it from the function's stdout, and FilterLogEvents returns that timestamp.
// Latency = line timestamp − the time the caller started sending. It spans
// accept (the durable write), JetStream pushing the event to the
// dispatcher's waiting pull, admission, thaw, the Runtime API handing the
// event to the runtime's /next, and aws-lambda-go decoding it up to the
// print. Log timestamps have millisecond resolution: each sample uses the
// middle of its millisecond, so samples are within ±0.5 ms. The caller's
// 202 can come after the function has started (the dispatcher is told of
// the event as soon as it is stored), so the send is the reference, and
// accept-p50-µs (send → 202) is reported alongside.
//
// Events go one at a time: the next is sent only once the previous one
// has started and the environment is idle again. ns/op is that whole
// cycle, log polling included, not the latency.
func BenchmarkAsyncQueueToStart(b *testing.B) {
	s := startServer(b)
	s.create("q2s", printEvents)
	// Warm: the first call's cold start is BenchmarkColdStart's business.
	if out := s.invoke("q2s", map[string]string{"data": "warm"}); out.FunctionError != nil {
		b.Fatalf("warm-up: %s", out.Payload)
	}
	logs := cloudwatchlogs.New(cloudwatchlogs.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.url),
		Credentials: rootCredentials})
	url := s.url + "/2015-03-31/functions/q2s/invocations"
	c := signingClient()
	defer c.CloseIdleConnections()

	lat := make(latencies, 0, b.N)
	accept := make(latencies, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		tag := fmt.Sprintf("q2s-%d", i)
		sent := time.Now()
		if err := postEvent(c, url, `{"data":"`+tag+`"}`); err != nil {
			b.Fatal(err)
		}
		accept = append(accept, time.Since(sent))
		ts := startedAt(b, logs, "q2s", tag, sent)
		lat = append(lat, time.UnixMilli(ts).Add(500*time.Microsecond).Sub(sent))
		// Let the function return and its environment freeze again.
		testkit.WaitFor(b, 10*time.Second, "the function to finish", func() bool {
			return scrapeMetric(b, s, `icebox_concurrent_executions{function="q2s"}`) == 0
		})
	}
	b.StopTimer()
	lat.report(b)
	slices.Sort(accept)
	b.ReportMetric(float64(accept[len(accept)/2].Microseconds()), "accept-p50-µs")
}

// startedAt polls the function's log for the EVENT line carrying tag and
// returns its timestamp (unix ms).
func startedAt(b *testing.B, logs *cloudwatchlogs.Client, fn, tag string, since time.Time) int64 {
	b.Helper()
	want := `EVENT {"data":"` + tag + `"}`
	var ts int64
	testkit.WaitFor(b, 10*time.Second, fn+" to log "+want, func() bool {
		res, err := logs.FilterLogEvents(context.Background(), &cloudwatchlogs.FilterLogEventsInput{
			LogGroupName: aws.String("/aws/lambda/" + fn), FilterPattern: aws.String(`"` + tag + `"`),
			StartTime: aws.Int64(since.UnixMilli() - 1),
		})
		if err != nil {
			return false
		}
		for _, e := range res.Events {
			if aws.ToString(e.Message) == want {
				ts = aws.ToInt64(e.Timestamp)
				return true
			}
		}
		return false
	})
	return ts
}

// scrapeMetric reads one sample from the daemon's /metrics; -1 if absent.
func scrapeMetric(b testing.TB, s *server, sample string) float64 {
	b.Helper()
	resp, err := http.Get(s.url + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}
