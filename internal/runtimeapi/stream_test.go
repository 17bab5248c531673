package runtimeapi

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"icebox/internal/environment"
	"icebox/internal/model"
)

// sink is a caller taking a streamed response: it records each piece.
type sink struct {
	started chan string
	pieces  chan []byte
	err     error // returned by every Write when set: the caller is gone
	writes  int
}

func newSink() *sink { return &sink{started: make(chan string, 1), pieces: make(chan []byte, 1024)} }

func (s *sink) Start(ct string) { s.started <- ct }
func (s *sink) Write(p []byte) (int, error) {
	s.writes++
	if s.err != nil {
		return 0, s.err
	}
	s.pieces <- append([]byte(nil), p...)
	return len(p), nil
}

func (s *sink) piece(t *testing.T) []byte {
	t.Helper()
	select {
	case p := <-s.pieces:
		return p
	case <-time.After(wait):
		t.Fatal("no piece reached the caller")
	}
	return nil
}

// rawStream is a runtime's streamed POST to /response, written by hand so
// that the test decides when each chunk and the trailers go out.
type rawStream struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func (h *harness) stream(id string, header string) *rawStream {
	h.t.Helper()
	u, _ := url.Parse(h.base)
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "POST /2018-06-01/runtime/invocation/%s/response HTTP/1.1\r\nHost: %s\r\nLambda-Runtime-Function-Response-Mode: streaming\r\nTransfer-Encoding: chunked\r\nTrailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body\r\n%s\r\n", id, u.Host, header)
	return &rawStream{t: h.t, c: c, br: bufio.NewReader(c)}
}

func (s *rawStream) chunk(p []byte) error {
	_, err := fmt.Fprintf(s.c, "%x\r\n%s\r\n", len(p), p)
	return err
}

// end sends the last chunk and trailers and returns the answer's status.
func (s *rawStream) end(trailers string) int {
	s.t.Helper()
	fmt.Fprintf(s.c, "0\r\n%s\r\n", trailers)
	return s.status()
}

func (s *rawStream) status() int {
	s.t.Helper()
	_ = s.c.SetReadDeadline(time.Now().Add(wait))
	resp, err := http.ReadResponse(s.br, nil)
	if err != nil {
		s.t.Fatalf("reading the Runtime API's answer: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// streamCall hands a call with a stream to the runtime and returns its
// request id once the runtime holds it.
func streamCall(h *harness, id string, snk model.ResponseStream) <-chan environment.Outcome {
	h.t.Helper()
	inv := testInvocation(id)
	inv.Stream = snk
	res := h.invoke(inv)
	h.recv(h.next(context.Background()))
	return res
}

// Each piece the runtime streams reaches the caller before the runtime
// sends the next: nothing waits for the end of the response.
func TestStreamedResponseReachesCallerAsItArrives(t *testing.T) {
	h := start(t)
	snk := newSink()
	res := streamCall(h, "s-1", snk)
	st := h.stream("s-1", "Content-Type: text/plain\r\n")
	if ct := <-snk.started; ct != "text/plain" {
		t.Errorf("content type %q, want text/plain", ct)
	}
	for _, p := range []string{"one ", "two ", "three"} {
		if err := st.chunk([]byte(p)); err != nil {
			t.Fatal(err)
		}
		if got := snk.piece(t); string(got) != p {
			t.Fatalf("caller got %q, want %q", got, p)
		}
	}
	// A stream for a call the runtime does not hold is refused.
	if code := h.stream("not-held", "").end(""); code != http.StatusBadRequest {
		t.Fatalf("a stream for another id: status %d, want 400", code)
	}
	// A second stream at the same time, for the same call, is refused.
	if code := h.stream("s-1", "").end(""); code != http.StatusForbidden {
		t.Fatalf("a second stream: status %d, want 403", code)
	}
	if code := st.end(""); code != http.StatusAccepted {
		t.Fatalf("status %d, want 202", code)
	}
	if out := h.result(res); out.Kind != environment.Answered || len(out.Payload) != 0 {
		t.Fatalf("outcome %+v, want answered with the payload already streamed", out)
	}
	if st := h.env.State(); st != environment.Idle {
		t.Errorf("environment %s after the stream, want idle", st)
	}
}

// An error the function hits part-way arrives in the trailers: the call
// fails with it, as Lambda reports it.
func TestStreamErrorTrailers(t *testing.T) {
	h := start(t)
	snk := newSink()
	res := streamCall(h, "s-err", snk)
	st := h.stream("s-err", "")
	if ct := <-snk.started; ct != "application/octet-stream" {
		t.Errorf("default content type %q, want application/octet-stream", ct)
	}
	st.chunk([]byte("partial"))
	snk.piece(t)
	body := `{"errorType":"Error","errorMessage":"boom","trace":["Error: boom"]}`
	code := st.end("Lambda-Runtime-Function-Error-Type: Error\r\nLambda-Runtime-Function-Error-Body: " + base64.StdEncoding.EncodeToString([]byte(body)) + "\r\n")
	if code != http.StatusAccepted {
		t.Fatalf("status %d, want 202", code)
	}
	out := h.result(res)
	if out.Kind != environment.FunctionError || out.ErrorType != "Error" || string(out.Payload) != body {
		t.Fatalf("outcome %+v, want the trailers' error", out)
	}
}

// A stream over the limit fails the call with Function.ResponseSizeTooLarge
// and is cut off.
func TestStreamTooLarge(t *testing.T) {
	h := start(t, Config{MaxStreamBytes: 100 << 10})
	snk := newSink()
	res := streamCall(h, "s-big", snk)
	st := h.stream("s-big", "")
	go func() {
		for range snk.pieces {
		}
	}()
	piece := make([]byte, 16<<10)
	for i := 0; i < 8; i++ {
		if st.chunk(piece) != nil {
			break
		}
	}
	if code := st.status(); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413", code)
	}
	out := h.result(res)
	if out.Kind != environment.FunctionError || out.ErrorType != model.ErrorTypeResponseTooLarge ||
		!strings.Contains(string(out.Payload), "maximum allowed payload size (102400 bytes)") {
		t.Fatalf("outcome %+v, want Function.ResponseSizeTooLarge", out)
	}
}

// Past the uncapped bytes the stream is paced: 512 KiB at 1 MiB/s cannot
// take less than about half a second (a lower bound, not a speed).
func TestStreamPacedPastUncappedBytes(t *testing.T) {
	h := start(t, Config{StreamUncappedBytes: 64 << 10, StreamBytesPerSecond: 1 << 20})
	snk := newSink()
	res := streamCall(h, "s-paced", snk)
	st := h.stream("s-paced", "")
	go func() {
		for range snk.pieces {
		}
	}()
	begin := time.Now()
	piece := make([]byte, 32<<10)
	for i := 0; i < (64+512)/32; i++ {
		if err := st.chunk(piece); err != nil {
			t.Fatal(err)
		}
	}
	if code := st.end(""); code != http.StatusAccepted {
		t.Fatalf("status %d", code)
	}
	// The limiter's burst lets one chunk through unpaced.
	if took, least := time.Since(begin), 400*time.Millisecond; took < least {
		t.Errorf("512 KiB past the uncapped bytes at 1 MiB/s took %v, want at least %v", took, least)
	}
	if out := h.result(res); out.Kind != environment.Answered {
		t.Fatalf("outcome %+v", out)
	}
}

// A caller that goes away stops getting pieces; the runtime's stream is
// read to its end and dropped, and the call ends normally.
func TestStreamCallerGone(t *testing.T) {
	h := start(t)
	snk := newSink()
	snk.err = errors.New("client went away")
	res := streamCall(h, "s-gone", snk)
	st := h.stream("s-gone", "")
	<-snk.started
	for i := 0; i < 4; i++ {
		st.chunk([]byte("dropped"))
	}
	if code := st.end(""); code != http.StatusAccepted {
		t.Fatalf("status %d, want 202", code)
	}
	if out := h.result(res); out.Kind != environment.Answered {
		t.Fatalf("outcome %+v, want answered", out)
	}
	if snk.writes != 1 {
		t.Errorf("%d writes to a caller that was gone after the first, want 1", snk.writes)
	}
}

// A caller that takes a buffered response (Invoke) gets a streamed one
// whole, within the buffered limit.
func TestStreamToBufferedCaller(t *testing.T) {
	h := start(t)
	res := streamCall(h, "s-buf", nil)
	st := h.stream("s-buf", "")
	st.chunk([]byte(`{"a":`))
	st.chunk([]byte(`1}`))
	if code := st.end(""); code != http.StatusAccepted {
		t.Fatalf("status %d", code)
	}
	if out := h.result(res); out.Kind != environment.Answered || string(out.Payload) != `{"a":1}` {
		t.Fatalf("outcome %+v, want the whole response", out)
	}

	res = streamCall(h, "s-buf-big", nil)
	st = h.stream("s-buf-big", "")
	piece := make([]byte, 1<<20)
	for i := 0; i < 7; i++ {
		if st.chunk(piece) != nil {
			break
		}
	}
	if code := st.status(); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413", code)
	}
	if out := h.result(res); out.ErrorType != model.ErrorTypeResponseTooLarge || !strings.Contains(string(out.Payload), "(6291556 bytes)") {
		t.Fatalf("outcome %+v, want Function.ResponseSizeTooLarge at the buffered limit", out)
	}
}

// The caller decides: a response posted whole (with its length, no
// streaming header) to a caller that streams is passed on as a stream; a
// chunked one without the header (aws-lambda-go's way) to a buffered
// caller keeps its error trailers.
func TestStreamWhateverTheRuntimeSays(t *testing.T) {
	h := start(t)
	snk := newSink()
	res := streamCall(h, "whole", snk)
	done := make(chan int, 1)
	go func() {
		code, _ := h.post("/runtime/invocation/whole/response", map[string]string{"Content-Type": "application/json"}, []byte(`{"posted":"whole"}`))
		done <- code
	}()
	if ct := <-snk.started; ct != "application/json" {
		t.Errorf("content type %q", ct)
	}
	if p := snk.piece(t); string(p) != `{"posted":"whole"}` {
		t.Fatalf("caller got %q", p)
	}
	if code := <-done; code != http.StatusAccepted {
		t.Fatalf("status %d", code)
	}
	if out := h.result(res); out.Kind != environment.Answered {
		t.Fatalf("outcome %+v", out)
	}

	res = streamCall(h, "chunked", nil)
	u, _ := url.Parse(h.base)
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := base64.StdEncoding.EncodeToString([]byte(`{"errorMessage":"reader failed","errorType":"errorString"}`))
	fmt.Fprintf(c, "POST /2018-06-01/runtime/invocation/chunked/response HTTP/1.1\r\nHost: %s\r\nTransfer-Encoding: chunked\r\nTrailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body\r\n\r\n2\r\n{}\r\n0\r\nLambda-Runtime-Function-Error-Type: errorString\r\nLambda-Runtime-Function-Error-Body: %s\r\n\r\n", u.Host, body)
	st := &rawStream{t: t, c: c, br: bufio.NewReader(c)}
	if code := st.status(); code != http.StatusAccepted {
		t.Fatalf("status %d", code)
	}
	if out := h.result(res); out.Kind != environment.FunctionError || out.ErrorType != "errorString" {
		t.Fatalf("outcome %+v, want the trailers' errorString", out)
	}
}
