package api

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"

	"icebox/internal/errdefs"
	"icebox/internal/invoke"
	"icebox/internal/model"
)

// streamWriteTimeout bounds one write of a streamed response to its
// caller: a client that stops reading for this long loses the stream (the
// function runs on, as on Lambda), so it cannot hold a handler forever.
const streamWriteTimeout = 30 * time.Second

// invokeWithResponseStream serves InvokeWithResponseStream: the call runs
// like Invoke's (same admission, concurrency and authorization), and its
// response reaches the caller as application/vnd.amazon.eventstream
// events: a PayloadChunk for each piece read from the runtime (which
// passes on every response to a streaming caller as it arrives, streamed
// or not), then InvokeComplete, with the function's error if it failed.
func (s *Server) invokeWithResponseStream(w http.ResponseWriter, r *http.Request) error {
	typ := invoke.Type(r.Header.Get("X-Amz-Invocation-Type"))
	switch typ {
	case "", invoke.RequestResponse, invoke.DryRun:
	default:
		return fmt.Errorf("1 validation error detected: Value '%s' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: [RequestResponse, DryRun]: %w", typ, errdefs.ErrInvalid)
	}
	tail := r.Header.Get("X-Amz-Log-Type") == "Tail"
	fn, err := s.lookup(r)
	if err != nil {
		return err
	}
	req := invokeRequest(r, &fn, typ)
	if typ == invoke.DryRun {
		res, err := s.invoker.Invoke(r.Context(), req)
		if err != nil {
			return err
		}
		w.Header().Set("X-Amz-Executed-Version", res.ExecutedVersion)
		w.WriteHeader(http.StatusNoContent)
		return nil
	}

	// The invocation's request id, known before it runs: the headers may
	// go out before it ends.
	req.RequestID = model.NewUUID()
	w.Header().Set("x-amzn-RequestId", req.RequestID)
	es := newEventStream(w, fn.VersionName())
	// The connection outlives the call (keep-alive): its next request
	// must not inherit the stream's deadline.
	defer es.rc.SetWriteDeadline(time.Time{})
	req.Stream, req.Routed = es, es.routed
	var res model.Result
	done := make(chan struct{})
	go func() {
		defer close(done)
		res, err = s.invoker.Invoke(r.Context(), req)
		es.end()
	}()
	es.relay(r, done, es.start, es.piece)
	if err != nil {
		if !es.wroteHeader {
			return err
		}
		// Too late for an error response: InvokeComplete says it, as
		// fail would (a platform fault logged, its details kept back).
		status, code := classify(err)
		msg := message(err)
		if status >= 500 {
			s.log.Error("streamed invocation failed", "path", r.URL.Path, "err", err)
			if status == http.StatusInternalServerError {
				msg = "An internal error occurred in icebox; see the server log."
			}
		}
		_ = es.complete(code, msg, nil)
		return nil
	}
	es.writeHeader()
	var logs []byte
	if tail {
		logs = res.LogTail
	}
	code, details := "", ""
	if res.FunctionError != "" {
		var body struct{ ErrorType, ErrorMessage string }
		_ = json.Unmarshal(res.Payload, &body)
		code, details = body.ErrorType, body.ErrorMessage
		if code == "" {
			code, details = res.FunctionError, string(res.Payload)
		}
	}
	_ = es.complete(code, details, logs)
	return nil
}

// pipe is the caller's end of a streamed invocation: the Runtime API's
// goroutine hands it each piece (model.ResponseStream) and the API
// handler's goroutine, the only one writing to the client, relays it, then
// lets the runtime read on. Nothing is buffered in between.
type pipe struct {
	pieces  chan []byte   // a piece to relay; the writer waits on acks
	acks    chan struct{} // the piece was written
	started chan struct{} // closed by Start
	ended   chan struct{} // closed when the call is over
	gone    chan struct{} // closed when the client is gone

	startOnce, endOnce sync.Once
	// contentType is the function's; written by Start before started is
	// closed.
	contentType string
}

var _ model.ResponseStream = (*pipe)(nil)

func newPipe() *pipe {
	return &pipe{pieces: make(chan []byte), acks: make(chan struct{}), started: make(chan struct{}),
		ended: make(chan struct{}), gone: make(chan struct{})}
}

// errStreamClosed is what the runtime's side gets once the client is gone
// or the call is over.
var errStreamClosed = errors.New("response stream closed")

// Start is the runtime's side: the stream begins.
func (p *pipe) Start(contentType string) {
	p.startOnce.Do(func() {
		p.contentType = contentType
		close(p.started)
	})
}

// Write is the runtime's side: it returns once b was written to the
// client, or at once if the client is gone or the call over.
func (p *pipe) Write(b []byte) (int, error) {
	select {
	case p.pieces <- b:
	case <-p.gone:
		return 0, errStreamClosed
	case <-p.ended:
		return 0, errStreamClosed
	}
	select {
	case <-p.acks:
		return len(b), nil
	case <-p.gone:
		return 0, errStreamClosed
	}
}

// end tells both sides the call is over.
func (p *pipe) end() { p.endOnce.Do(func() { close(p.ended) }) }

// relay runs on the handler's goroutine until done (the call is over):
// onStart when the function starts streaming, onPiece for each piece. A
// client that goes away, or an onPiece error, ends the relaying: the
// function's pieces are dropped from then on.
func (p *pipe) relay(r *http.Request, done <-chan struct{}, onStart func(contentType string), onPiece func([]byte) error) {
	started := p.started
	for {
		select {
		case <-started:
			started = nil
			onStart(p.contentType)
		case b := <-p.pieces:
			if err := onPiece(b); err != nil {
				close(p.gone)
				<-done
				return
			}
			p.acks <- struct{}{}
		case <-r.Context().Done():
			close(p.gone)
			<-done
			return
		case <-done:
			return
		}
	}
}

// eventStream writes a streamed invocation as InvokeWithResponseStream's
// events.
type eventStream struct {
	*pipe
	w   http.ResponseWriter
	rc  *http.ResponseController
	enc *eventstream.Encoder
	// version is the version that runs; set by routed before the call
	// starts.
	version string
	// Owned by the handler's goroutine.
	wroteHeader bool
}

func newEventStream(w http.ResponseWriter, version string) *eventStream {
	return &eventStream{pipe: newPipe(), w: w, version: version, rc: http.NewResponseController(w), enc: eventstream.NewEncoder()}
}

// routed learns the version that runs (a weighted alias's pick), before
// the call starts and so before any header is written.
func (es *eventStream) routed(version string) { es.version = version }

// start is relay's onStart: the headers go out as the function starts.
func (es *eventStream) start(string) { es.writeHeader() }

// piece is relay's onPiece.
func (es *eventStream) piece(b []byte) error {
	return es.event("PayloadChunk", "application/octet-stream", b)
}

// writeHeader sends the response's status and headers, once.
func (es *eventStream) writeHeader() {
	if es.wroteHeader {
		return
	}
	es.wroteHeader = true
	h := es.w.Header()
	h.Set("Content-Type", "application/vnd.amazon.eventstream")
	h.Set("X-Amz-Executed-Version", es.version)
	es.w.WriteHeader(http.StatusOK)
}

// event writes one event and flushes it to the client.
func (es *eventStream) event(typ, contentType string, payload []byte) error {
	es.writeHeader()
	_ = es.rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	msg := eventstream.Message{Payload: payload}
	msg.Headers.Set(":event-type", eventstream.StringValue(typ))
	msg.Headers.Set(":content-type", eventstream.StringValue(contentType))
	msg.Headers.Set(":message-type", eventstream.StringValue("event"))
	if err := es.enc.Encode(es.w, msg); err != nil {
		return err
	}
	return es.rc.Flush()
}

// complete writes the InvokeComplete event that ends every stream.
func (es *eventStream) complete(code, details string, logs []byte) error {
	var body struct {
		ErrorCode    string `json:",omitempty"`
		ErrorDetails string `json:",omitempty"`
		LogResult    string `json:",omitempty"`
	}
	body.ErrorCode, body.ErrorDetails = code, details
	if logs != nil {
		body.LogResult = base64.StdEncoding.EncodeToString(logs)
	}
	b, _ := json.Marshal(body)
	return es.event("InvokeComplete", "application/json", b)
}
