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

// BenchmarkRoundTrip times one warm invocation through the Runtime API: the
// environment's Invoke hands an event to a runtime parked in /next (a keep-alive net/http client
// over loopback, like aws-lambda-go's), which posts it back to /response.
// allocs/op counts both sides; compare with BenchmarkLoopbackPair, the two
// bare HTTP exchanges the round trip is made of.
func BenchmarkRoundTrip(b *testing.B) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	env, sb := environment.New(environment.Config{}), envtest.New()
	s := New(env, Config{})
	go s.Serve(l)
	started := make(chan environment.Outcome, 1)
	go func() {
		out, _ := env.Start(environment.Runtime{Sandbox: sb}, "init", time.Minute)
		started <- out
	}()
	base := "http://" + l.Addr().String() + "/2018-06-01/runtime/invocation/"
	client := &http.Client{}
	runtimeDone := make(chan struct{})
	go func() {
		defer close(runtimeDone)
		var buf bytes.Buffer
		for {
			resp, err := client.Get(base + "next")
			if err != nil {
				return
			}
			buf.Reset()
			_, _ = buf.ReadFrom(resp.Body)
			resp.Body.Close()
			id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
			resp, err = client.Post(base+id+"/response", "application/json", bytes.NewReader(buf.Bytes()))
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
	inv := &model.Invocation{
		RequestID:   "8476a536-e9f4-11e8-9739-2dfe598c3fcd",
		FunctionARN: "arn:aws:lambda:us-east-1:000000000000:function:bench",
		TraceID:     "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=0",
		Payload:     []byte(`{"hello":"world"}`),
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, err := env.Invoke(inv, time.Hour)
		if err != nil || len(r.Payload) != len(inv.Payload) {
			b.Fatalf("invoke: %v %q", err, r.Payload)
		}
	}
	b.StopTimer()
	env.Destroy()
	sb.Kill()
	s.Close() // the runtime's next request fails and it returns
	<-runtimeDone
}

// BenchmarkLoopbackPair is the floor of BenchmarkRoundTrip: the same client
// doing a GET and a POST of the event against a bare net/http server.
func BenchmarkLoopbackPair(b *testing.B) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	payload := []byte(`{"hello":"world"}`)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /next", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(payload) })
	mux.HandleFunc("POST /response", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusAccepted)
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(l)
	defer srv.Close()
	base := "http://" + l.Addr().String()
	client := &http.Client{}
	var buf bytes.Buffer
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp, err := client.Get(base + "/next")
		if err != nil {
			b.Fatal(err)
		}
		buf.Reset()
		_, _ = buf.ReadFrom(resp.Body)
		resp.Body.Close()
		resp, err = client.Post(base+"/response", "application/json", bytes.NewReader(buf.Bytes()))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}
