package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
)

// Benchmarks compare icebox with floors measured in the same run:
//
//	BenchmarkFloorLoopbackEcho  a bare net/http echo over loopback, same client
//	BenchmarkWarmInvoke         icebox warm invoke, same client (and the SDK)
//	BenchmarkFloorExec          exec of the function's static binary until it exits
//	BenchmarkColdStart          first invoke of a fresh function (sandbox + init + call)
//
// Each reports p50/p99 in µs next to ns/op. Run:
//
//	go test -run '^$' -bench . -benchtime 2000x ./test/e2e/

var payload = []byte(`{"hello":"world"}`)

type latencies []time.Duration

func (l latencies) report(b *testing.B) {
	if len(l) == 0 {
		return
	}
	slices.Sort(l)
	b.ReportMetric(float64(l[len(l)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(l[len(l)*99/100].Microseconds()), "p99-µs")
}

// measure times each of b.N runs of op and reports p50/p99.
func measure(b *testing.B, op func()) {
	measureFresh(b, func(int) func() { return op })
}

// measureFresh is measure with untimed preparation before each run
// (creating the fresh function a cold start needs); prepare returns the
// operation to time.
func measureFresh(b *testing.B, prepare func(i int) func()) {
	lat := make(latencies, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		op := prepare(i)
		b.StartTimer()
		t := time.Now()
		op()
		lat = append(lat, time.Since(t))
	}
	lat.report(b)
}

func post(b *testing.B, c *http.Client, url string) {
	resp, err := c.Post(url, "application/json", bytes.NewReader(payload))
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Amz-Function-Error") != "" {
		b.Fatalf("status %d", resp.StatusCode)
	}
}

func BenchmarkFloorLoopbackEcho(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	defer srv.Close()
	c := signingClient()
	measure(b, func() {
		post(b, c, srv.URL)
	})
}

func BenchmarkWarmInvoke(b *testing.B) {
	s := startServer(b)
	s.create("bench", withProgram(b, "echo"))
	url := s.url + "/2015-03-31/functions/bench/invocations"
	c := signingClient()
	post(b, c, url)
	measure(b, func() {
		post(b, c, url)
	})
}

func BenchmarkWarmInvokeSDK(b *testing.B) {
	s := startServer(b)
	s.create("bench", withProgram(b, "echo"))
	in := &lambda.InvokeInput{FunctionName: aws.String("bench"), Payload: payload}
	ctx := context.Background()
	s.client.Invoke(ctx, in)
	measure(b, func() {
		if _, err := s.client.Invoke(ctx, in); err != nil {
			b.Fatal(err)
		}
	})
}

func BenchmarkFloorExec(b *testing.B) {
	programZip(b, "echo")
	bin := filepath.Join(buildDir, "echo", "bootstrap")
	measure(b, func() {
		// Without the Runtime API variables aws-lambda-go exits at once.
		cmd := exec.Command(bin)
		cmd.Env = []string{}
		_ = cmd.Run()
	})
}

func BenchmarkColdStart(b *testing.B) {
	measureColdStarts(b, startServer(b), "cold", withProgram(b, "echo"))
}

// measureColdStarts times the first invoke of b.N fresh functions made
// with mutate.
func measureColdStarts(b *testing.B, s *server, prefix string, mutate func(*lambda.CreateFunctionInput)) {
	c := signingClient()
	measureFresh(b, func(i int) func() {
		name := fmt.Sprintf("%s%d", prefix, i)
		s.create(name, mutate)
		url := s.url + "/2015-03-31/functions/" + name + "/invocations"
		return func() { post(b, c, url) }
	})
}

// withProgram deploys testdata/NAME instead of the default test function.
func withProgram(t testing.TB, name string) func(*lambda.CreateFunctionInput) {
	zip := programZip(t, name)
	return func(in *lambda.CreateFunctionInput) { in.Code.ZipFile = zip }
}
