package api_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"icebox/internal/sandbox/sandboxtest"
)

// Function URLs in RESPONSE_STREAM mode against fake sandboxes whose
// runtimes stream through the Runtime API.

// streamURL gives function s (of streamDaemon) a NONE URL in
// RESPONSE_STREAM mode and returns a call to it, sent: a GET of /page, or
// a POST of body to /respond.
func streamURL(t *testing.T, rt sandboxtest.Runtime, body ...string) *http.Response {
	t.Helper()
	d, _, _ := streamDaemon(t, rt)
	var c urlConfig
	getJSON(t, d, "POST", "/2021-10-31/functions/s/url", map[string]any{"AuthType": "NONE", "InvokeMode": "RESPONSE_STREAM"}, 201, &c)
	if c.InvokeMode != "RESPONSE_STREAM" {
		t.Fatalf("InvokeMode %q", c.InvokeMode)
	}
	allowPublic(t, d, "s")
	req, _ := http.NewRequest(http.MethodGet, c.FunctionUrl+"page", nil)
	if len(body) > 0 {
		req, _ = http.NewRequest(http.MethodPost, c.FunctionUrl+"respond", strings.NewReader(body[0]))
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := urlClient(d).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

const prelude = `{"statusCode":201,"headers":{"x-streamed":"yes","content-type":"text/event-stream"},"cookies":["a=1","b=2"]}` + "\x00\x00\x00\x00\x00\x00\x00\x00"

// The prelude's status, headers and cookies are the response's, and each
// piece of the body reaches the client before the function writes the
// next (it waits for the test to have read it).
func TestFunctionURLResponseStreamPrelude(t *testing.T) {
	seen := make(chan struct{})
	s := &streamer{contentType: "application/vnd.awslambda.http-integration-response", write: func(ctx context.Context, w io.Writer) error {
		if _, err := io.WriteString(w, prelude); err != nil {
			return err
		}
		return writeSeen(ctx, w, seen, "p0\n", "p1\n", "p2\n")
	}}
	resp := streamURL(t, s.runtime)
	if resp.StatusCode != 201 || resp.Header.Get("X-Streamed") != "yes" || resp.Header.Get("Content-Type") != "text/event-stream" ||
		strings.Join(resp.Header.Values("Set-Cookie"), ";") != "a=1;b=2" {
		t.Fatalf("head %d %v, want the prelude's", resp.StatusCode, resp.Header)
	}
	br := bufio.NewReader(resp.Body)
	for _, want := range []string{"p0\n", "p1\n", "p2\n"} {
		line, err := br.ReadString('\n')
		if err != nil || line != want {
			t.Fatalf("read %q (%v), want %q", line, err, want)
		}
		seen <- struct{}{}
	}
	if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
		t.Fatalf("after the pieces: %q (%v), want the end of the body", rest, err)
	}
}

// Without a prelude the stream is a 200 with the function's content type;
// an error after the response began cuts it off, so the client sees a
// broken body rather than a whole one.
func TestFunctionURLResponseStreamPlainAndError(t *testing.T) {
	s := &streamer{contentType: "text/csv", write: func(ctx context.Context, w io.Writer) error {
		_, err := io.WriteString(w, "a,b\n")
		return err
	}, errType: "Error", errBody: `{"errorType":"Error","errorMessage":"boom"}`}
	resp := streamURL(t, s.runtime)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/csv" {
		t.Fatalf("head %d %v", resp.StatusCode, resp.Header)
	}
	body, err := io.ReadAll(resp.Body)
	if string(body) != "a,b\n" || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("body %q (%v), want the piece then a cut-off response", body, err)
	}
}

// A prelude that never ends is refused (502) without holding more than
// its bound; a function that does not stream is answered with its
// response as it is.
func TestFunctionURLResponseStreamBadPreludeAndBuffered(t *testing.T) {
	s := &streamer{contentType: "application/vnd.awslambda.http-integration-response", write: func(ctx context.Context, w io.Writer) error {
		piece := []byte(strings.Repeat("{", 16<<10))
		for range 64 {
			if _, err := w.Write(piece); err != nil {
				return err
			}
		}
		return nil
	}}
	resp := streamURL(t, s.runtime)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), "Internal Server Error") {
		t.Errorf("endless prelude: %d %s, want 502", resp.StatusCode, body)
	}

	const answer = `{"statusCode":418,"body":"teapot"}`
	resp = streamURL(t, urlRuntime, answer)
	body, _ = io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != answer {
		t.Errorf("buffered function: %d %s, want its answer as it is, a 200 (statusCode is not read in this mode)", resp.StatusCode, body)
	}
}
