package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"icebox/internal/daemon"
	"icebox/internal/runtimeapi"
)

// Response streaming end to end: Node.js handlers written with
// awslambda.streamifyResponse, run by icebox's runtime client, read with
// aws-sdk-go-v2, boto3 and (from a function) the JS SDK. Streams are capped
// at 40 MiB and not paced here, to keep the test short; internal/runtimeapi
// tests Lambda's 200 MiB and 2 MiB/s.

// streamed is one InvokeWithResponseStream call as the SDK delivered it.
type streamed struct {
	chunks     [][]byte
	receivedAt []time.Time // when each chunk reached the client
	complete   *types.InvokeWithResponseStreamCompleteEvent
}

func (s *streamed) payload() []byte { return bytes.Join(s.chunks, nil) }

func (s *server) stream(ctx context.Context, name string) streamed {
	s.t.Helper()
	out, err := s.client.InvokeWithResponseStream(ctx, &lambda.InvokeWithResponseStreamInput{FunctionName: aws.String(name), Payload: []byte(`{}`)})
	if err != nil {
		s.t.Fatalf("InvokeWithResponseStream %s: %v", name, err)
	}
	es := out.GetStream()
	defer es.Close()
	var r streamed
	for ev := range es.Events() {
		switch ev := ev.(type) {
		case *types.InvokeWithResponseStreamResponseEventMemberPayloadChunk:
			r.chunks = append(r.chunks, ev.Value.Payload)
			r.receivedAt = append(r.receivedAt, time.Now())
		case *types.InvokeWithResponseStreamResponseEventMemberInvokeComplete:
			r.complete = &ev.Value
		}
	}
	if err := es.Err(); err != nil {
		s.t.Fatalf("%s: event stream: %v", name, err)
	}
	if r.complete == nil {
		s.t.Fatalf("%s: no InvokeComplete", name)
	}
	return r
}

// chunkLine is what stream.chunks writes per chunk.
type chunkLine struct {
	I         int   `json:"i"`
	WrittenMs int64 `json:"writtenMs"`
}

// parseChunks reads the five lines of stream.chunks out of a stream's
// payload. Lambda does not keep the function's write boundaries: writes
// that wait in a buffer together (a reader starved of CPU for a moment)
// arrive as one PayloadChunk, so the tests count lines, not chunks, and
// show streaming by the first chunk arriving before the last line is
// written.
func parseChunks(t *testing.T, payload string) []chunkLine {
	t.Helper()
	var lines []chunkLine
	for _, l := range strings.Split(strings.TrimSpace(payload), "\n") {
		var c chunkLine
		if err := json.Unmarshal([]byte(l), &c); err != nil {
			t.Fatalf("chunk line %q: %v", l, err)
		}
		lines = append(lines, c)
	}
	if len(lines) != 5 {
		t.Fatalf("%d chunk lines, want 5: %q", len(lines), payload)
	}
	return lines
}

func TestNodeResponseStreaming(t *testing.T) {
	t.Parallel()
	needNode(t)
	s := startServer(t, func(c *daemon.Config) {
		c.Streaming = runtimeapi.Config{MaxStreamBytes: 40 << 20, StreamBytesPerSecond: 1 << 40}
	})
	for _, h := range []string{"chunks", "big", "fails", "failsLong", "unfinished", "forever", "trickle", "http"} {
		s.createNode("stream-"+h, "stream."+h, func(in *lambda.CreateFunctionInput) {
			in.MemorySize = aws.Int32(256)
			if h == "trickle" {
				in.Timeout = aws.Int32(1)
			}
		})
	}
	ctx := context.Background()

	t.Run("first chunk before the last is written (aws-sdk-go-v2)", func(t *testing.T) {
		r := s.stream(ctx, "stream-chunks")
		lines := parseChunks(t, string(r.payload()))
		if len(r.chunks) < 2 || r.complete.ErrorCode != nil {
			t.Fatalf("%d chunks, error %v; want several and none", len(r.chunks), aws.ToString(r.complete.ErrorCode))
		}
		if first, last := r.receivedAt[0], time.UnixMilli(lines[4].WrittenMs); !first.Before(last) {
			t.Errorf("the first chunk arrived at %v, after the last was written at %v", first, last)
		}
	})

	t.Run("first chunk before the last is written (boto3)", func(t *testing.T) {
		run := boto3(t)
		var r struct {
			Status          int
			ExecutedVersion string
			Chunks          []struct {
				ReceivedMs float64
				Payload    string
			}
			Complete map[string]string
		}
		out := run("testdata/boto_stream.py", s.url, "stream-chunks")
		if err := json.Unmarshal(out, &r); err != nil {
			t.Fatalf("boto_stream.py printed %q: %v", out, err)
		}
		var all strings.Builder
		for _, c := range r.Chunks {
			all.WriteString(c.Payload)
		}
		lines := parseChunks(t, all.String())
		if r.Status != 200 || r.ExecutedVersion != "$LATEST" || len(r.Chunks) < 2 || r.Complete["ErrorCode"] != "" ||
			!strings.Contains(r.Complete["LogResult"], "REPORT RequestId:") {
			t.Fatalf("boto3 saw %+v", r)
		}
		if first, last := r.Chunks[0].ReceivedMs, float64(lines[4].WrittenMs); first >= last {
			t.Errorf("the first chunk arrived at %.0f ms, after the last was written at %.0f ms", first, last)
		}
	})

	t.Run("first chunk before the last is written (JS SDK, from a function)", func(t *testing.T) {
		s.putRole("stream-reader", `{"Statement":[{"Effect":"Allow","Action":"lambda:InvokeFunction","Resource":"*"}]}`)
		s.createNode("stream-jsreader", "jsreader.handler", func(in *lambda.CreateFunctionInput) {
			in.Role, in.Timeout, in.MemorySize = aws.String(roleBase+"stream-reader"), aws.Int32(30), aws.Int32(256)
		})
		var r struct {
			Status          int
			ExecutedVersion string
			Chunks          []struct {
				ReceivedMs float64
				Payload    string
			}
			Complete map[string]any
		}
		s.nodeCall("stream-jsreader", map[string]string{"target": "stream-chunks"}, &r)
		var all strings.Builder
		for _, c := range r.Chunks {
			all.WriteString(c.Payload)
		}
		lines := parseChunks(t, all.String())
		if r.Status != 200 || r.ExecutedVersion != "$LATEST" || len(r.Chunks) < 2 || r.Complete == nil || r.Complete["ErrorCode"] != nil {
			t.Fatalf("the JS SDK saw %+v", r)
		}
		if first, last := r.Chunks[0].ReceivedMs, float64(lines[4].WrittenMs); first >= last {
			t.Errorf("the first chunk arrived at %.0f ms, after the last was written at %.0f ms", first, last)
		}
	})

	t.Run("30 MiB arrive whole", func(t *testing.T) {
		r := s.stream(ctx, "stream-big")
		p := r.payload()
		if r.complete.ErrorCode != nil || len(p) != 30<<20 {
			t.Fatalf("%d bytes, error %v %v; want 30 MiB", len(p), aws.ToString(r.complete.ErrorCode), aws.ToString(r.complete.ErrorDetails))
		}
		for i, b := range p {
			if b != byte(i%251) {
				t.Fatalf("byte %d is %d, want %d", i, b, i%251)
			}
		}
	})

	t.Run("an error thrown mid-stream", func(t *testing.T) {
		r := s.stream(ctx, "stream-fails")
		if string(r.payload()) != "partial " || aws.ToString(r.complete.ErrorCode) != "TypeError" || aws.ToString(r.complete.ErrorDetails) != "boom mid-stream" {
			t.Fatalf("payload %q, InvokeComplete %s / %s; want the partial output then TypeError / boom mid-stream",
				r.payload(), aws.ToString(r.complete.ErrorCode), aws.ToString(r.complete.ErrorDetails))
		}
	})

	t.Run("an error too long for the trailers arrives cut", func(t *testing.T) {
		r := s.stream(ctx, "stream-failsLong")
		if code, details := aws.ToString(r.complete.ErrorCode), aws.ToString(r.complete.ErrorDetails); code != "RangeError" ||
			!strings.HasPrefix(details, "long long") || len(details) > 1024 {
			t.Fatalf("InvokeComplete %s / %.60q… (%d bytes), want RangeError and the message's first KiB", code, details, len(details))
		}
	})

	t.Run("a stream the handler does not end", func(t *testing.T) {
		r := s.stream(ctx, "stream-unfinished")
		if aws.ToString(r.complete.ErrorCode) != "Error" || aws.ToString(r.complete.ErrorDetails) != "Response stream is not finished." {
			t.Fatalf("InvokeComplete %s / %s, want Error / Response stream is not finished.", aws.ToString(r.complete.ErrorCode), aws.ToString(r.complete.ErrorDetails))
		}
	})

	t.Run("a function streaming past the limit is cut off and its environment goes on", func(t *testing.T) {
		r := s.stream(ctx, "stream-forever")
		if aws.ToString(r.complete.ErrorCode) != "Function.ResponseSizeTooLarge" || len(r.payload()) > 40<<20 {
			t.Fatalf("%d bytes, InvokeComplete %s / %s; want at most 40 MiB and Function.ResponseSizeTooLarge",
				len(r.payload()), aws.ToString(r.complete.ErrorCode), aws.ToString(r.complete.ErrorDetails))
		}
		r = s.stream(ctx, "stream-forever")
		if aws.ToString(r.complete.ErrorCode) != "Function.ResponseSizeTooLarge" {
			t.Fatalf("second call: InvokeComplete %s / %s", aws.ToString(r.complete.ErrorCode), aws.ToString(r.complete.ErrorDetails))
		}
	})

	t.Run("a timeout mid-stream", func(t *testing.T) {
		r := s.stream(ctx, "stream-trickle")
		if len(r.chunks) == 0 || aws.ToString(r.complete.ErrorCode) != "Sandbox.Timedout" || !strings.Contains(aws.ToString(r.complete.ErrorDetails), "Task timed out after 1.00 seconds") {
			t.Fatalf("%d chunks, InvokeComplete %s / %s; want some ticks then Sandbox.Timedout", len(r.chunks), aws.ToString(r.complete.ErrorCode), aws.ToString(r.complete.ErrorDetails))
		}
	})

	t.Run("a client gone mid-stream", func(t *testing.T) {
		// A client reads the start of the response, then hangs up.
		hc := signingClient()
		resp, err := hc.Post(s.url+"/2021-11-15/functions/stream-chunks/response-streaming-invocations", "application/json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(resp.Body, make([]byte, 64)); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		hc.CloseIdleConnections()
		// The function streams on to its end; the next call is served.
		r := s.stream(ctx, "stream-chunks")
		if len(parseChunks(t, string(r.payload()))) != 5 || r.complete.ErrorCode != nil {
			t.Fatalf("the call after a client left: %q, error %v", r.payload(), aws.ToString(r.complete.ErrorCode))
		}
	})

	t.Run("through a RESPONSE_STREAM function URL", func(t *testing.T) {
		url := func(name string) string {
			cfg, err := s.client.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String(name),
				AuthType: types.FunctionUrlAuthTypeNone, InvokeMode: types.InvokeModeResponseStream})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.client.AddPermission(ctx, &lambda.AddPermissionInput{FunctionName: aws.String(name), StatementId: aws.String("public"),
				Action: aws.String("lambda:InvokeFunctionUrl"), Principal: aws.String("*"), FunctionUrlAuthType: types.FunctionUrlAuthTypeNone}); err != nil {
				t.Fatal(err)
			}
			return aws.ToString(cfg.FunctionUrl)
		}
		resp, err := localhostClient().Get(url("stream-chunks"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		br := bufio.NewReader(resp.Body)
		var lines strings.Builder
		var firstAt time.Time
		for i := 0; i < 5; i++ {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("line %d: %v", i, err)
			}
			if i == 0 {
				firstAt = time.Now()
			}
			lines.WriteString(line)
		}
		chunks := parseChunks(t, lines.String())
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" {
			t.Errorf("head %d %v, want 200 with the function's content type", resp.StatusCode, resp.Header)
		}
		if last := time.UnixMilli(chunks[4].WrittenMs); !firstAt.Before(last) {
			t.Errorf("the first line arrived at %v, after the last was written at %v", firstAt, last)
		}

		req, _ := http.NewRequest(http.MethodGet, url("stream-http"), nil)
		resp, body := urlDo(t, req)
		if resp.StatusCode != 201 || resp.Header.Get("X-Streamed") != "yes" || resp.Header.Get("Content-Type") != "text/plain" ||
			strings.Join(resp.Header.Values("Set-Cookie"), ";") != "a=1;b=2" || string(body) != "hello world" {
			t.Fatalf("HttpResponseStream.from: %d %v %q, want 201, its headers and cookies, and hello world", resp.StatusCode, resp.Header, body)
		}
	})

	t.Run("Invoke gets a streamed response whole", func(t *testing.T) {
		out := s.invoke("stream-chunks", map[string]any{})
		if out.FunctionError != nil {
			t.Fatalf("function error %s: %s", *out.FunctionError, out.Payload)
		}
		parseChunks(t, string(out.Payload))
	})
}

// aws-lambda-go's own streaming (events.LambdaFunctionURLStreamingResponse,
// a chunked response with a prelude and error trailers, no streaming
// header) through a RESPONSE_STREAM URL and InvokeWithResponseStream.
func TestGoResponseStreaming(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	s.create("go-stream", func(in *lambda.CreateFunctionInput) { in.Code.ZipFile = programZip(t, "streamfn") })
	ctx := context.Background()
	cfg, err := s.client.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("go-stream"),
		AuthType: types.FunctionUrlAuthTypeNone, InvokeMode: types.InvokeModeResponseStream})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.client.AddPermission(ctx, &lambda.AddPermissionInput{FunctionName: aws.String("go-stream"), StatementId: aws.String("public"),
		Action: aws.String("lambda:InvokeFunctionUrl"), Principal: aws.String("*"), FunctionUrlAuthType: types.FunctionUrlAuthTypeNone}); err != nil {
		t.Fatal(err)
	}
	u := aws.ToString(cfg.FunctionUrl)

	resp, err := localhostClient().Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 202 || resp.Header.Get("X-Go") != "yes" || resp.Header.Get("Content-Type") != "text/plain" || resp.Header.Get("Set-Cookie") != "g=1" {
		t.Fatalf("head %d %v, want the prelude's", resp.StatusCode, resp.Header)
	}
	br := bufio.NewReader(resp.Body)
	var firstAt time.Time
	var lastWritten int64
	for i := range 3 {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		if i == 0 {
			firstAt = time.Now()
		}
		var n int
		if _, err := fmt.Sscanf(line, "line %d %d", &n, &lastWritten); err != nil || n != i {
			t.Fatalf("line %q", line)
		}
	}
	if !firstAt.Before(time.UnixMilli(lastWritten)) {
		t.Errorf("the first line arrived at %v, after the last was written at %v", firstAt, time.UnixMilli(lastWritten))
	}

	// The body reader fails after the response began: the response is cut.
	resp, err = localhostClient().Get(u + "fail")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Count(string(body), "\n") != 3 || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("failing reader through the URL: %q (%v), want the three lines then a cut-off response", body, err)
	}

	// The same failure through InvokeWithResponseStream: InvokeComplete
	// carries aws-lambda-go's error from the trailers.
	out, err := s.client.InvokeWithResponseStream(ctx, &lambda.InvokeWithResponseStreamInput{FunctionName: aws.String("go-stream"), Payload: []byte(`{"rawPath":"/fail"}`)})
	if err != nil {
		t.Fatal(err)
	}
	var complete *types.InvokeWithResponseStreamCompleteEvent
	for ev := range out.GetStream().Events() {
		if c, ok := ev.(*types.InvokeWithResponseStreamResponseEventMemberInvokeComplete); ok {
			complete = &c.Value
		}
	}
	out.GetStream().Close()
	if complete == nil || aws.ToString(complete.ErrorCode) != "errorString" || aws.ToString(complete.ErrorDetails) != "reader failed" {
		t.Fatalf("InvokeComplete %+v, want errorString / reader failed", complete)
	}
}
