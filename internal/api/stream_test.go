package api_test

import (
	"cmp"
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"icebox/internal/auth/authtest"
	"icebox/internal/daemon"
	"icebox/internal/runtimeapi"
	"icebox/internal/sandbox/sandboxtest"
	"icebox/internal/testkit"
)

// InvokeWithResponseStream against the whole daemon with fake sandboxes
// whose runtimes stream through the Runtime API, read with aws-sdk-go-v2.

// streamer is a fake runtime that answers every event with a streamed
// response: write(w) writes the body, then the error trailers are sent
// when errType is set.
type streamer struct {
	write       func(ctx context.Context, w io.Writer) error
	contentType string // default text/plain
	errType     string
	errBody     string
	// answered counts the Runtime API's 202s to the streamed responses.
	answered atomic.Int32
}

// writeSeen writes each piece once the test has seen (received from seen)
// the one before, so any buffering of the response on the way hangs the test.
func writeSeen(ctx context.Context, w io.Writer, seen <-chan struct{}, pieces ...string) error {
	for _, p := range pieces {
		if _, err := io.WriteString(w, p); err != nil {
			return err
		}
		select {
		case <-seen:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (s *streamer) runtime(ctx context.Context, sb *sandboxtest.Sandbox) {
	for ctx.Err() == nil {
		id, _, err := sb.Next(ctx)
		if err != nil {
			return
		}
		pr, pw := io.Pipe()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, sb.RuntimeAPI()+"/runtime/invocation/"+id+"/response", pr)
		req.Header.Set("Lambda-Runtime-Function-Response-Mode", "streaming")
		req.Header.Set("Content-Type", cmp.Or(s.contentType, "text/plain"))
		req.Trailer = http.Header{"Lambda-Runtime-Function-Error-Type": nil, "Lambda-Runtime-Function-Error-Body": nil}
		go func() {
			err := s.write(ctx, pw)
			if s.errType != "" {
				req.Trailer.Set("Lambda-Runtime-Function-Error-Type", s.errType)
				req.Trailer.Set("Lambda-Runtime-Function-Error-Body", base64.StdEncoding.EncodeToString([]byte(s.errBody)))
			}
			pw.CloseWithError(err)
		}()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusAccepted {
			s.answered.Add(1)
		}
	}
}

// streamDaemon runs a daemon whose sandboxes run rt, with one function
// "s" (timeout 30 s), and returns an SDK client for it. Streams are not
// paced here (internal/runtimeapi tests the pacing).
func streamDaemon(t *testing.T, rt sandboxtest.Runtime) (*daemon.Daemon, *sandboxtest.Factory, *lambda.Client) {
	t.Helper()
	f := &sandboxtest.Factory{Runtime: func(int) sandboxtest.Runtime { return rt }}
	cfg := daemon.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), ShutdownTimeout: 5 * time.Second,
		RootAccessKeyID: authtest.AccessKeyID, RootSecretAccessKey: authtest.SecretAccessKey, Sandboxes: f,
		Streaming: runtimeapi.Config{StreamBytesPerSecond: 1 << 40}}
	d, err := daemon.Start(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Shutdown() })
	create := mustJSON(map[string]any{"FunctionName": "s", "Runtime": "provided.al2023", "Handler": "bootstrap",
		"Role": "arn:aws:iam::000000000000:role/r", "Code": map[string]string{"ZipFile": codeZip()}, "Timeout": 30})
	if a, raw := send(t, d, root, "POST", "/2015-03-31/functions", create, nil); a.status != 201 {
		t.Fatalf("create: %d %s", a.status, raw)
	}
	client := lambda.New(lambda.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + d.Addr()),
		Credentials: credentials.NewStaticCredentialsProvider(authtest.AccessKeyID, authtest.SecretAccessKey, ""), Retryer: aws.NopRetryer{},
		HTTPClient: &http.Client{Transport: testkit.SDKTransport{Base: &http.Transport{}}}})
	return d, f, client
}

// streamEvents invokes s with InvokeWithResponseStream and returns its
// events as they arrive.
func streamEvents(t *testing.T, ctx context.Context, c *lambda.Client) (<-chan types.InvokeWithResponseStreamResponseEvent, *lambda.InvokeWithResponseStreamOutput) {
	t.Helper()
	out, err := c.InvokeWithResponseStream(ctx, &lambda.InvokeWithResponseStreamInput{FunctionName: aws.String("s"), Payload: []byte(`{}`), LogType: types.LogTypeTail})
	if err != nil {
		t.Fatalf("InvokeWithResponseStream: %v", err)
	}
	t.Cleanup(func() { out.GetStream().Close() })
	return out.GetStream().Events(), out
}

func nextEvent(t *testing.T, events <-chan types.InvokeWithResponseStreamResponseEvent) types.InvokeWithResponseStreamResponseEvent {
	t.Helper()
	select {
	case ev, ok := <-events:
		if !ok {
			t.Fatal("the event stream ended early")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event")
	}
	return nil
}

// Each piece the function streams reaches the SDK before the function
// writes the next: the runtime waits for the test to have seen a piece
// before writing another, so any buffering of the response on the way
// would hang this test.
func TestInvokeWithResponseStreamDeliversPiecesAsWritten(t *testing.T) {
	seen := make(chan struct{})
	s := &streamer{write: func(ctx context.Context, w io.Writer) error {
		return writeSeen(ctx, w, seen, "p0 ", "p1 ", "p2 ", "p3 ", "p4")
	}}
	_, f, c := streamDaemon(t, s.runtime)
	events, out := streamEvents(t, context.Background(), c)
	if aws.ToString(out.ExecutedVersion) != "$LATEST" || aws.ToString(out.ResponseStreamContentType) != "application/vnd.amazon.eventstream" {
		t.Errorf("executed version %q, content type %q", aws.ToString(out.ExecutedVersion), aws.ToString(out.ResponseStreamContentType))
	}
	var got strings.Builder
	for i := 0; i < 5; i++ {
		ev, ok := nextEvent(t, events).(*types.InvokeWithResponseStreamResponseEventMemberPayloadChunk)
		if !ok {
			t.Fatalf("event %d is not a PayloadChunk", i)
		}
		got.Write(ev.Value.Payload)
		seen <- struct{}{}
	}
	done, ok := nextEvent(t, events).(*types.InvokeWithResponseStreamResponseEventMemberInvokeComplete)
	if !ok {
		t.Fatal("the last event is not InvokeComplete")
	}
	if got.String() != "p0 p1 p2 p3 p4" || done.Value.ErrorCode != nil {
		t.Fatalf("payload %q, error %v; want the five pieces and no error", got.String(), aws.ToString(done.Value.ErrorCode))
	}
	logs, _ := base64.StdEncoding.DecodeString(aws.ToString(done.Value.LogResult))
	if rid, ok := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata); !ok || !strings.Contains(string(logs), "REPORT RequestId: "+rid) {
		t.Errorf("LogResult %q has no REPORT line", logs)
	}
	for range events {
		// The SDK's event readers share a codec: let this one end first.
	}
	// The environment takes the next call.
	events, _ = streamEvents(t, context.Background(), c)
	go func() {
		for range 5 {
			seen <- struct{}{}
		}
	}()
	for ev := range events {
		if d, ok := ev.(*types.InvokeWithResponseStreamResponseEventMemberInvokeComplete); ok && d.Value.ErrorCode != nil {
			t.Fatalf("second call: %s", aws.ToString(d.Value.ErrorDetails))
		}
	}
	if n := len(f.Made()); n != 1 {
		t.Errorf("%d environments for two calls in a row, want 1", n)
	}
}

// An error the function reports in the trailers ends the stream with
// InvokeComplete's ErrorCode (its type) and ErrorDetails (its message).
func TestInvokeWithResponseStreamMidStreamError(t *testing.T) {
	s := &streamer{write: func(ctx context.Context, w io.Writer) error {
		_, err := io.WriteString(w, "partial")
		return err
	}, errType: "Error", errBody: `{"errorType":"Error","errorMessage":"boom","trace":["Error: boom"]}`}
	_, _, c := streamDaemon(t, s.runtime)
	events, _ := streamEvents(t, context.Background(), c)
	chunk, ok := nextEvent(t, events).(*types.InvokeWithResponseStreamResponseEventMemberPayloadChunk)
	if !ok || string(chunk.Value.Payload) != "partial" {
		t.Fatalf("first event %#v, want the partial PayloadChunk", chunk)
	}
	done, ok := nextEvent(t, events).(*types.InvokeWithResponseStreamResponseEventMemberInvokeComplete)
	if !ok || aws.ToString(done.Value.ErrorCode) != "Error" || aws.ToString(done.Value.ErrorDetails) != "boom" {
		t.Fatalf("last event %#v, want InvokeComplete Error/boom", done)
	}
}

// A function that does not stream still answers: one PayloadChunk with
// its response. Event invocations are refused; DryRun answers 204.
func TestInvokeWithResponseStreamBufferedFunction(t *testing.T) {
	d, _, c := streamDaemon(t, sandboxtest.Echo)
	events, _ := streamEvents(t, context.Background(), c)
	chunk, ok := nextEvent(t, events).(*types.InvokeWithResponseStreamResponseEventMemberPayloadChunk)
	if !ok || string(chunk.Value.Payload) != `{}` {
		t.Fatalf("first event %#v, want the echoed payload", chunk)
	}
	if _, ok := nextEvent(t, events).(*types.InvokeWithResponseStreamResponseEventMemberInvokeComplete); !ok {
		t.Fatal("no InvokeComplete")
	}
	const path = "/2021-11-15/functions/s/response-streaming-invocations"
	if a, _ := send(t, d, root, "POST", path, []byte(`{}`), map[string]string{"X-Amz-Invocation-Type": "Event"}); a.status != 400 || a.code != "InvalidParameterValueException" || !strings.Contains(a.msg, "[RequestResponse, DryRun]") {
		t.Errorf("Event: %+v, want 400 InvalidParameterValueException", a)
	}
	if a, _ := send(t, d, root, "POST", path, []byte(`{}`), map[string]string{"X-Amz-Invocation-Type": "DryRun"}); a.status != 204 {
		t.Errorf("DryRun: %+v, want 204", a)
	}
	if a, _ := send(t, d, root, "POST", path, []byte(`not json`), nil); a.status != 400 || a.code != "InvalidRequestContentException" {
		t.Errorf("bad payload: %+v, want 400 InvalidRequestContentException", a)
	}
	// Admission is Invoke's: with no concurrency reserved, a 429 before
	// any event.
	if a, raw := send(t, d, root, "PUT", "/2017-10-31/functions/s/concurrency", mustJSON(map[string]int{"ReservedConcurrentExecutions": 0}), nil); a.status != 200 {
		t.Fatalf("put concurrency: %+v %s", a, raw)
	}
	if a, _ := send(t, d, root, "POST", path, []byte(`{}`), nil); a.status != 429 || a.code != "TooManyRequestsException" {
		t.Errorf("throttled: %+v, want 429 TooManyRequestsException", a)
	}
}

// A client that goes away mid-stream: the function streams on (its pieces
// dropped), its call ends normally and the environment takes the next
// call; nothing is left running.
func TestInvokeWithResponseStreamClientGone(t *testing.T) {
	s := &streamer{write: func(ctx context.Context, w io.Writer) error {
		piece := make([]byte, 32<<10)
		for range 64 {
			if _, err := w.Write(piece); err != nil {
				return err
			}
			time.Sleep(5 * time.Millisecond)
		}
		return nil
	}}
	d, f, c := streamDaemon(t, s.runtime)
	drain := func() int {
		events, out := streamEvents(t, context.Background(), c)
		defer func() {
			if err := out.GetStream().Err(); err != nil {
				t.Errorf("event stream: %v", err)
			}
		}()
		n := 0
		for ev := range events {
			switch ev := ev.(type) {
			case *types.InvokeWithResponseStreamResponseEventMemberPayloadChunk:
				n++
			case *types.InvokeWithResponseStreamResponseEventMemberInvokeComplete:
				if ev.Value.ErrorCode != nil {
					t.Errorf("%s: %s", aws.ToString(ev.Value.ErrorCode), aws.ToString(ev.Value.ErrorDetails))
				}
			}
		}
		return n
	}
	drain() // warm: the environment and its goroutines stay
	time.Sleep(100 * time.Millisecond)
	before := runtime.NumGoroutine()
	// A client reads the start of the response, then hangs up.
	req, _ := http.NewRequest(http.MethodPost, "http://"+d.Addr()+"/2021-11-15/functions/s/response-streaming-invocations", strings.NewReader(`{}`))
	if err := authtest.SignAs(req, *root); err != nil {
		t.Fatal(err)
	}
	gone := &http.Client{Transport: &http.Transport{}}
	resp, err := gone.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 1024)); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	gone.CloseIdleConnections()
	testkit.WaitFor(t, 10*time.Second, "the function's stream to be answered", func() bool { return s.answered.Load() == 2 })

	if n := drain(); n != 64 || len(f.Made()) != 1 {
		t.Fatalf("next call: %d chunks on %d environments, want the whole stream on the same environment", n, len(f.Made()))
	}
	testkit.WaitFor(t, 10*time.Second, "goroutines to settle", func() bool { return runtime.NumGoroutine() <= before+2 })
}

// A client that stops reading holds the function back (TCP backpressure
// through the daemon), not the daemon's memory: the function gets far
// less than its whole 64 MiB stream through while nobody reads.
func TestInvokeWithResponseStreamSlowReader(t *testing.T) {
	var written atomic.Int64
	s := &streamer{write: func(ctx context.Context, w io.Writer) error {
		piece := make([]byte, 64<<10)
		for range 1024 {
			n, err := w.Write(piece)
			written.Add(int64(n))
			if err != nil {
				return err
			}
		}
		return nil
	}}
	d, _, _ := streamDaemon(t, s.runtime)
	req, _ := http.NewRequest(http.MethodPost, "http://"+d.Addr()+"/2021-11-15/functions/s/response-streaming-invocations", strings.NewReader(`{}`))
	if err := authtest.SignAs(req, *root); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// Nobody reads resp.Body: wait for the function's progress to stop.
	last := int64(-1)
	testkit.WaitFor(t, 20*time.Second, "the function to be held back", func() bool {
		n := written.Load()
		stalled := n == last
		last = n
		time.Sleep(100 * time.Millisecond)
		return stalled
	})
	if n := written.Load(); n >= 32<<20 {
		t.Fatalf("the function wrote %d MiB with nobody reading; want it held back by the caller", n>>20)
	}
	// Reading on delivers the rest, whole.
	total, err := io.Copy(io.Discard, resp.Body)
	if err != nil || total < 64<<20 {
		t.Fatalf("read %d bytes (%v), want the whole 64 MiB stream and its framing", total, err)
	}
}
