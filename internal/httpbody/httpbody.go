// Package httpbody reads request bodies the way every icebox listener that
// faces untrusted callers must (the API, and each sandbox's Runtime API):
// within a limit, into a buffer that grows as bytes arrive (never one of
// the size a header announces), under a read deadline set from the
// announced size and cleared afterwards.
package httpbody

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"
)

const (
	// MaxHeaderBytes bounds one request's headers (Lambda's largest
	// header, X-Amz-Client-Context, is under 4 KB).
	MaxHeaderBytes = 64 << 10
	// ReadHeaderTimeout bounds the wait for a request's headers.
	ReadHeaderTimeout = 10 * time.Second
	// A body must arrive at minRate after grace: 80 s for the largest
	// CreateFunction.
	grace   = 10 * time.Second
	minRate = 1 << 20 // bytes per second
	// firstChunk is the most a buffer starts with.
	firstChunk = 64 << 10
	// smallChunk is what a body of unknown length (chunked) starts with.
	// Runtimes send their responses chunked (aws-lambda-go does, always):
	// starting those at firstChunk allocated and cleared 64 KiB per warm
	// invoke for a 17-byte answer, two thirds of the daemon's allocated
	// bytes under load.
	smallChunk = 512
)

// TooLargeError is a body over its limit: Size is the announced length,
// or what had arrived when the limit was passed.
type TooLargeError struct{ Size int64 }

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("request body of %d bytes is over its limit", e.Size)
}

// Read reads r's body, at most limit bytes. reserve, when set, is asked
// for each new largest size of the buffer before it grows to it (the
// announced length first, so a request that cannot be held is refused
// before a byte is read); its error ends the read. A deadline left on the connection would cancel the
// request's context during a long call (or end a long poll), so it is
// cleared before Read returns.
func Read(w http.ResponseWriter, r *http.Request, limit int64, reserve func(size int64) error) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, &TooLargeError{r.ContentLength}
	}
	expect := max(r.ContentLength, 0)
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(grace + time.Duration(expect/minRate)*time.Second))
	defer rc.SetReadDeadline(time.Time{})
	reserved := expect
	if reserve != nil {
		if err := reserve(expect); err != nil {
			return nil, err
		}
	}
	b := make([]byte, 0, min(expect, firstChunk))
	for {
		if int64(len(b)) > limit {
			return nil, &TooLargeError{int64(len(b))}
		}
		if len(b) == cap(b) {
			if r.ContentLength >= 0 && int64(len(b)) == r.ContentLength {
				return b, nil // net/http ends a body at its Content-Length
			}
			want := min(max(2*int64(cap(b)), smallChunk), limit+1)
			if expect > int64(len(b)) {
				want = min(want, expect)
			}
			if reserve != nil && want > reserved {
				if err := reserve(want); err != nil {
					return nil, err
				}
				reserved = want
			}
			b = slices.Grow(b, int(want)-len(b))
		}
		// Never more than one byte past the limit, whatever capacity
		// the allocator rounded the buffer up to.
		n, err := r.Body.Read(b[len(b):min(cap(b), int(limit+1))])
		b = b[:len(b)+n]
		if errors.Is(err, io.EOF) {
			if int64(len(b)) > limit {
				return nil, &TooLargeError{int64(len(b))}
			}
			return b, nil
		}
		if err != nil {
			return nil, err
		}
	}
}
