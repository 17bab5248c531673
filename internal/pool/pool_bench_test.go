package pool

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"icebox/internal/model"
	"icebox/internal/sandbox/sandboxtest"
)

// leanEcho is a runtime for benchmarks: it answers every event with its
// payload over one keep-alive connection and writes no output.
func leanEcho(ctx context.Context, sb *sandboxtest.Sandbox) {
	base := sb.RuntimeAPI()
	client := &http.Client{}
	var buf bytes.Buffer
	for ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/runtime/invocation/next", nil)
		resp, err := client.Do(req)
		if err != nil {
			return
		}
		buf.Reset()
		_, _ = buf.ReadFrom(resp.Body)
		resp.Body.Close()
		id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
		r, err := client.Post(base+"/runtime/invocation/"+id+"/response", "application/json", bytes.NewReader(buf.Bytes()))
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
}

// discardLogs is a log sink that keeps nothing.
type discardLogs struct{}

func (discardLogs) Writer(group, stream string) LogWriter { return discardLogs{} }
func (discardLogs) Write(time.Time, string)               {}

func warmPool(b *testing.B) (*Pool, model.Function) {
	p, _ := newPool(b, Config{}, always(leanEcho))
	p.logs = discardLogs{}
	fn := function("bench")
	if _, err := p.Invoke(context.Background(), fn, &model.Invocation{RequestID: "cold", Payload: []byte(`{}`)}); err != nil {
		b.Fatal(err)
	}
	return p, fn
}

// BenchmarkPick times taking a warm environment and giving it back: the
// pool's share of a warm invoke before and after the Runtime API.
func BenchmarkPick(b *testing.B) {
	p, fn := warmPool(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		e, cold, _, err := p.acquire(ctx, &fn, "req")
		if err != nil || cold {
			b.Fatalf("acquire: %v (cold: %v)", err, cold)
		}
		p.release(e)
	}
}

// BenchmarkWarmInvoke times Pool.Invoke on a warm environment whose runtime
// echoes over loopback: pick, thaw, Runtime API round trip, REPORT, release.
// Compare with runtimeapi's BenchmarkRoundTrip for the pool's own share.
func BenchmarkWarmInvoke(b *testing.B) {
	p, fn := warmPool(b)
	ctx := context.Background()
	inv := &model.Invocation{RequestID: "8476a536-e9f4-11e8-9739-2dfe598c3fcd", Payload: []byte(`{"hello":"world"}`)}
	b.ReportAllocs()
	for b.Loop() {
		res, err := p.Invoke(ctx, fn, inv)
		if err != nil || res.FunctionError != "" {
			b.Fatalf("invoke: %v %s", err, res.Payload)
		}
	}
}
