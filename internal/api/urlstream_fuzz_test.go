package api

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
)

// FuzzURLStreamPrelude: whatever a function streams after declaring an
// HTTP prelude, cut into whatever pieces, the URL stream either refuses
// it (before writing anything) or writes a final status and exactly the
// bytes after the first 8 NUL bytes as the body; it never holds more than
// maxPrelude and one piece.
func FuzzURLStreamPrelude(f *testing.F) {
	f.Add([]byte(`{"statusCode":201,"headers":{"x":"y"},"cookies":["a=1"]}`+"\x00\x00\x00\x00\x00\x00\x00\x00body"), uint16(5))
	f.Add([]byte(`{}`+"\x00\x00\x00\x00\x00\x00\x00\x00"), uint16(1))
	f.Add([]byte(`{"statusCode":700}`+"\x00\x00\x00\x00\x00\x00\x00\x00x"), uint16(3))
	f.Add([]byte(`[1]`+"\x00\x00\x00\x00\x00\x00\x00\x00x"), uint16(100))
	f.Add([]byte(`{"statusCode":200`), uint16(2))
	f.Fuzz(func(t *testing.T, stream []byte, cut uint16) {
		size := int(cut%64) + 1
		w := httptest.NewRecorder()
		us := &urlStream{pipe: newPipe(), w: w, r: httptest.NewRequest("GET", "/", nil), rc: http.NewResponseController(w)}
		us.start(preludeContentType)
		failed := false
		for rest := stream; len(rest) > 0 && !failed; {
			n := min(size, len(rest))
			if err := us.piece(rest[:n]); err != nil {
				failed = true
			}
			if len(us.prelude) > maxPrelude+size {
				t.Fatalf("holding %d bytes of prelude", len(us.prelude))
			}
			rest = rest[n:]
		}
		i := bytes.Index(stream, preludeDelimiter)
		switch {
		case failed:
			if us.wroteHeader || !us.badPrelude {
				t.Fatalf("a refused prelude wrote %v (bad %v)", us.wroteHeader, us.badPrelude)
			}
		case us.wroteHeader:
			if w.Code < 200 || w.Code > 599 {
				t.Fatalf("status %d", w.Code)
			}
			if want := stream[i+len(preludeDelimiter):]; !bytes.Equal(w.Body.Bytes(), want) {
				t.Fatalf("body %q, want %q", w.Body.Bytes(), want)
			}
		case i >= 0:
			t.Fatalf("a prelude delimiter at %d and nothing written", i)
		}
	})
}
