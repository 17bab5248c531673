package httpbody

import (
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

// oneByte hands out a body a byte per Read, as a slow sender would.
type oneByte struct{ r io.Reader }

func (o oneByte) Read(b []byte) (int, error) { return o.r.Read(b[:min(len(b), 1)]) }

func TestRead(t *testing.T) {
	body := strings.Repeat("x", 200_000)
	for _, tc := range []struct {
		name      string
		announced int64 // -1: chunked
		limit     int64
		tooLarge  int64 // the size reported, 0: read fine
	}{
		{"announced, within", int64(len(body)), 300_000, 0},
		{"chunked, within", -1, 300_000, 0},
		{"announced, over", int64(len(body)), 100_000, int64(len(body))},
		{"chunked, over", -1, 100_000, 100_001},
		{"exactly the limit", int64(len(body)), int64(len(body)), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", oneByte{strings.NewReader(body)})
			r.ContentLength = tc.announced
			var reserved []int64
			got, err := Read(httptest.NewRecorder(), r, tc.limit, func(size int64) error {
				reserved = append(reserved, size)
				return nil
			})
			var tl *TooLargeError
			switch {
			case tc.tooLarge != 0:
				if !errors.As(err, &tl) || tl.Size != tc.tooLarge {
					t.Fatalf("err %v, want TooLargeError{%d}", err, tc.tooLarge)
				}
				if tc.announced > 0 && len(reserved) != 0 {
					t.Errorf("reserved %v for a body refused by its announced size", reserved)
				}
			case err != nil || string(got) != body:
				t.Fatalf("read %d bytes, %v", len(got), err)
			}
			for i, n := range reserved {
				if i > 0 && n <= reserved[i-1] || n > tc.limit+1 {
					t.Errorf("reservations %v: must grow, and never past limit+1", reserved)
				}
			}
			if tc.tooLarge == 0 && (len(reserved) == 0 || reserved[len(reserved)-1] < int64(len(body))) {
				t.Errorf("reservations %v do not cover the %d bytes held", reserved, len(body))
			}
		})
	}
}

// TestReadRefusesWhatCannotBeReserved: a reservation's error ends the read
// before the buffer grows.
func TestReadRefusesWhatCannotBeReserved(t *testing.T) {
	spent := errors.New("spent")
	r := httptest.NewRequest("POST", "/", strings.NewReader(strings.Repeat("x", 1<<20)))
	_, err := Read(httptest.NewRecorder(), r, 2<<20, func(size int64) error {
		if size > 1<<19 {
			return spent
		}
		return nil
	})
	if !errors.Is(err, spent) {
		t.Fatalf("err %v, want the reservation's", err)
	}
}

// A small body of unknown length (a runtime's chunked response) is held in
// a small buffer, not in one of firstChunk bytes.
func TestReadSmallChunkedBody(t *testing.T) {
	r := httptest.NewRequest("POST", "/", strings.NewReader(`{"hello":"world"}`))
	r.ContentLength = -1
	got, err := Read(httptest.NewRecorder(), r, 6<<20, nil)
	if err != nil || string(got) != `{"hello":"world"}` {
		t.Fatalf("read %q, %v", got, err)
	}
	if cap(got) > smallChunk {
		t.Errorf("a %d-byte chunked body is held in a buffer of %d bytes", len(got), cap(got))
	}
}
