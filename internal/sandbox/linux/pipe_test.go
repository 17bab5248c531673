package linux

import (
	"io"
	"testing"
)

// TestOutputPipeWrittenIsExact writes while a reader drains the pipe: at
// every instant the writer checks, Written counts every byte it wrote,
// whether read already, in a read's hands, or still in the pipe.
func TestOutputPipeWrittenIsExact(t *testing.T) {
	var p outputPipe
	w, err := p.open()
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	drained := make(chan int64)
	go func() {
		n, _ := io.Copy(io.Discard, struct{ io.Reader }{&p}) // small reads, many of them
		drained <- n
	}()
	line := []byte("line of log output\n")
	var wrote int64
	for i := 0; i < 20000; i++ {
		n, err := w.Write(line)
		if err != nil {
			t.Fatal(err)
		}
		wrote += int64(n)
		if got := p.Written(); got != wrote {
			t.Fatalf("after %d bytes written, Written() = %d", wrote, got)
		}
	}
	w.Close()
	if n := <-drained; n != wrote {
		t.Errorf("the reader got %d bytes of %d", n, wrote)
	}
}
