package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"icebox/internal/invoke"
	"icebox/internal/model"
)

// Function URLs in RESPONSE_STREAM mode: the function's stream is the HTTP
// response, written as it arrives. A stream whose content type is
// application/vnd.awslambda.http-integration-response (what
// awslambda.HttpResponseStream.from sends) starts with a prelude, a JSON
// {statusCode, headers, cookies} ended by 8 NUL bytes: its status, headers
// and cookies become the response's, under the URL's CORS rules, and the
// rest is the body. Any other response is a 200 with the function's
// content type and its bytes as they are: in this mode a buffered answer's
// statusCode is not read, as on Lambda.

// preludeContentType marks a stream that starts with an HTTP prelude.
const preludeContentType = "application/vnd.awslambda.http-integration-response"

// maxPrelude bounds a prelude (its JSON and the delimiter): the daemon
// holds it until the delimiter arrives.
const maxPrelude = 64 << 10

var (
	preludeDelimiter = make([]byte, 8)
	errBadPrelude    = errors.New("the function's stream does not start with a valid HTTP prelude")
)

// urlStream writes a streamed invocation as a function URL's response.
type urlStream struct {
	*pipe
	w    http.ResponseWriter
	r    *http.Request
	rc   *http.ResponseController
	cors *model.URLCors
	// Owned by the handler's goroutine.
	wroteHeader bool
	// prelude collects the prelude until its delimiter; nil when the
	// stream has none or it was read.
	prelude []byte
	// badPrelude: the stream's prelude was not one.
	badPrelude bool
}

// streamURL runs a call to a RESPONSE_STREAM URL: req is the call, whose
// event is ready. An error it returns is written as Lambda's URL error
// (nothing was written yet); a failure once the response has begun cuts
// the connection, so the client sees a broken response, not a whole one.
func (s *Server) streamURL(w http.ResponseWriter, r *http.Request, u model.FunctionURL, req invoke.Request) error {
	us := &urlStream{pipe: newPipe(), w: w, r: r, rc: http.NewResponseController(w), cors: u.Cors}
	// The connection outlives the call (keep-alive): its next request
	// must not inherit the stream's deadline.
	defer us.rc.SetWriteDeadline(time.Time{})
	req.Stream = us
	var res model.Result
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		res, err = s.invoker.Invoke(r.Context(), req)
		us.end()
	}()
	us.relay(r, done, us.start, us.piece)
	switch {
	case us.badPrelude:
		return errURLFunction
	case err != nil || res.FunctionError != "":
		if !us.wroteHeader {
			if err != nil {
				return err
			}
			return errURLFunction
		}
		if err != nil {
			s.log.Error("streamed function URL call failed", "host", r.Host, "err", err)
		}
		panic(http.ErrAbortHandler)
	case !us.wroteHeader:
		// The stream ended inside its prelude.
		return errURLFunction
	}
	return nil
}

// start is relay's onStart: a plain stream's head goes out at once; a
// prelude's once it has arrived.
func (us *urlStream) start(contentType string) {
	if contentType == preludeContentType {
		us.prelude = []byte{}
		return
	}
	us.writeHead(urlHead{StatusCode: http.StatusOK, Headers: map[string]string{"content-type": contentType}})
	_ = us.rc.Flush()
}

func (us *urlStream) writeHead(head urlHead) {
	writeURLHead(us.w, us.r, us.cors, head)
	us.wroteHeader = true
}

// piece is relay's onPiece.
func (us *urlStream) piece(b []byte) error {
	if us.prelude != nil {
		us.prelude = append(us.prelude, b...)
		i := bytes.Index(us.prelude, preludeDelimiter)
		if i < 0 {
			if len(us.prelude) > maxPrelude {
				us.badPrelude = true
				return errBadPrelude
			}
			return nil
		}
		head, err := parsePrelude(us.prelude[:i])
		if err != nil {
			us.badPrelude = true
			return err
		}
		b = us.prelude[i+len(preludeDelimiter):]
		us.prelude = nil
		us.writeHead(head)
	}
	_ = us.rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	if len(b) > 0 {
		if _, err := us.w.Write(b); err != nil {
			return err
		}
	}
	return us.rc.Flush()
}

// parsePrelude reads an HTTP prelude by the rules of a buffered response
// (parseURLResponse), its statusCode 200 when it has none.
func parsePrelude(b []byte) (urlHead, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil || fields == nil {
		return urlHead{}, errBadPrelude
	}
	if fields["statusCode"] == nil {
		fields["statusCode"] = json.RawMessage("200")
	}
	delete(fields, "body")
	b, _ = json.Marshal(fields)
	res, err := parseURLResponse(b)
	return res.head, err
}
