package runtimeapi

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"icebox/internal/environment"
	"icebox/internal/environment/envtest"
	"icebox/internal/model"
)

// countingSink is a caller that takes every piece at once.
type countingSink struct{ n int64 }

func (*countingSink) Start(string) {}
func (c *countingSink) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// BenchmarkStreamedResponse times a warm invocation whose runtime streams
// 8 MiB (net/http's chunked client, over loopback) to a caller that takes
// each piece at once: the Runtime API's cost per streamed byte (MB/s),
// unpaced. Compare with BenchmarkRoundTrip for the call itself.
func BenchmarkStreamedResponse(b *testing.B) {
	const size = 8 << 20
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	env, sb := environment.New(environment.Config{}), envtest.New()
	s := New(env, Config{StreamUncappedBytes: 1 << 40})
	go s.Serve(l)
	started := make(chan environment.Outcome, 1)
	go func() {
		out, _ := env.Start(environment.Runtime{Sandbox: sb}, "init", time.Minute)
		started <- out
	}()
	base := "http://" + l.Addr().String() + "/2018-06-01/runtime/invocation/"
	client := &http.Client{}
	body := bytes.Repeat([]byte("x"), size)
	runtimeDone := make(chan struct{})
	go func() {
		defer close(runtimeDone)
		for {
			resp, err := client.Get(base + "next")
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
			// io.MultiReader hides the length: the body goes chunked.
			req, _ := http.NewRequest(http.MethodPost, base+id+"/response", io.MultiReader(bytes.NewReader(body)))
			req.Header.Set(responseModeHeader, "streaming")
			resp, err = client.Do(req)
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	if out := <-started; out.Kind != environment.Ready {
		b.Fatalf("start: %+v", out)
	}
	sink := &countingSink{}
	inv := &model.Invocation{RequestID: "8476a536-e9f4-11e8-9739-2dfe598c3fcd", FunctionARN: "arn:aws:lambda:us-east-1:000000000000:function:bench",
		Payload: []byte(`{}`), Stream: sink}
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if r, err := env.Invoke(inv, time.Hour); err != nil || r.Kind != environment.Answered {
			b.Fatalf("invoke: %v %+v", err, r)
		}
	}
	b.StopTimer()
	if sink.n != int64(b.N)*size {
		b.Fatalf("the caller got %d bytes, want %d", sink.n, int64(b.N)*size)
	}
	env.Destroy()
	sb.Kill()
	s.Close()
	<-runtimeDone
}
