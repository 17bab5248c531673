package runtimeapi

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"golang.org/x/time/rate"

	"icebox/internal/model"
)

// A streamed response (Lambda-Runtime-Function-Response-Mode: streaming)
// is a chunked POST to /response whose trailers may report an error the
// function hit part-way. A response to a caller that streams is passed on
// as it arrives, whatever the runtime says (see Server.response).
const (
	responseModeHeader = "Lambda-Runtime-Function-Response-Mode"
	errorTypeTrailer   = "Lambda-Runtime-Function-Error-Type"
	errorBodyTrailer   = "Lambda-Runtime-Function-Error-Body"
	// streamChunk is the most read from the runtime at once: what the
	// daemon holds of a stream in flight.
	streamChunk = 32 << 10
)

// streamResponse passes a streamed response to the call's caller as it
// arrives: each piece read from the runtime is handed over before the next
// is read, so a slow caller slows the runtime (through TCP) and the daemon
// holds one piece at most. A caller that takes a buffered response gets the
// stream buffered, within the buffered limit. Past the first
// StreamUncappedBytes the stream is paced at StreamBytesPerSecond; past
// MaxStreamBytes the call fails with Function.ResponseSizeTooLarge.
func (s *Server) streamResponse(w http.ResponseWriter, r *http.Request, id string) {
	s.mu.Lock()
	busy := s.streaming
	s.streaming = true
	s.mu.Unlock()
	if busy {
		apiError(w, http.StatusForbidden, "InvalidStateTransition", "a response is already being streamed")
		return
	}
	defer func() {
		s.mu.Lock()
		s.streaming = false
		s.mu.Unlock()
	}()
	sink := s.env.Stream(id)
	if sink != nil {
		ct := r.Header.Get("Content-Type")
		if ct == "" {
			ct = "application/octet-stream"
		}
		sink.Start(ct)
	}
	var (
		buf     []byte
		total   int64
		limiter = rate.NewLimiter(rate.Limit(s.cfg.StreamBytesPerSecond), streamChunk)
		chunk   = make([]byte, streamChunk)
	)
	for {
		n, err := r.Body.Read(chunk)
		if n > 0 {
			total += int64(n)
			if total > s.cfg.MaxStreamBytes || (sink == nil && total > model.MaxSyncPayloadBytes) {
				body := model.StreamTooLargeBody(s.cfg.MaxStreamBytes)
				if sink == nil {
					body = model.ResponseTooLargeBody()
				}
				s.env.Fail(id, model.ErrorTypeResponseTooLarge, body)
				// Answer at once and hang up, rather than reading on for
				// the rest of a stream nobody takes.
				w.Header().Set("Connection", "close")
				apiError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "response payload too large")
				return
			}
			if total > s.cfg.StreamUncappedBytes {
				if werr := limiter.WaitN(r.Context(), n); werr != nil {
					return
				}
			}
			if sink == nil {
				buf = append(buf, chunk[:n]...)
			} else if _, werr := sink.Write(chunk[:n]); werr != nil {
				// The caller is gone: read the rest and drop it.
				sink = discard{}
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// The runtime broke the stream off, or sent trailers over
			// net/http's 4 KiB: the call fails, unless its end (a kill at
			// the deadline, an exit) is already recorded.
			s.env.Fail(id, model.ErrorTypeInvalidResponse, model.ErrorBody(model.ErrorTypeInvalidResponse, "reading streamed response: "+err.Error()))
			return
		}
	}
	if typ := r.Trailer.Get(errorTypeTrailer); typ != "" {
		if !s.env.Fail(id, typ, streamErrorBody(typ, r.Trailer.Get(errorBodyTrailer))) {
			invalidRequestID(w)
			return
		}
		accepted(w)
		return
	}
	if !s.env.Respond(id, buf) {
		invalidRequestID(w)
		return
	}
	accepted(w)
}

// discard is the sink of a stream whose caller went away.
type discard struct{}

func (discard) Start(string)                {}
func (discard) Write(p []byte) (int, error) { return len(p), nil }

// streamErrorBody is Lambda's error body from the error trailers: the body
// trailer is base64 of the runtime's JSON error; anything else is wrapped.
func streamErrorBody(typ, b64 string) []byte {
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || !json.Valid(b) {
		return model.ErrorBody(typ, string(b))
	}
	return b
}
