package linux

import (
	"io"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// outputPipe is the daemon's end of one of a sandbox's output pipes. It
// counts the bytes it yields under the same lock as its reads, so Written
// is exact: what was read plus what is still in the pipe, at one instant.
// (Counting after os.File.Read returned would miss the bytes a read had
// taken from the pipe and not yet counted, and the pool would end a call
// before its last log lines were pumped.)
type outputPipe struct {
	f  *os.File // nil until open
	rc syscall.RawConn

	mu    sync.Mutex
	taken int64
}

// open makes the pipe and returns its write end, for the sandbox.
func (p *outputPipe) open() (*os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	rc, err := r.SyscallConn()
	if err != nil {
		r.Close()
		w.Close()
		return nil, err
	}
	p.f, p.rc = r, rc
	return w, nil
}

// Read reads through Go's poller: the descriptor is non-blocking, so the
// lock is held for one read(2) that never waits.
func (p *outputPipe) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	var n int
	var rerr error
	err := p.rc.Read(func(fd uintptr) bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		for {
			n, rerr = unix.Read(int(fd), b)
			if rerr != unix.EINTR {
				break
			}
		}
		if n > 0 {
			p.taken += int64(n)
		}
		return rerr != unix.EAGAIN
	})
	switch {
	case err != nil:
		return 0, err
	case rerr != nil:
		return 0, &os.PathError{Op: "read", Path: p.f.Name(), Err: rerr}
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// Written is the number of bytes written to the pipe so far.
func (p *outputPipe) Written() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.taken + int64(p.pending())
}

// pending is the number of bytes in the pipe, not yet read.
func (p *outputPipe) pending() int {
	n := 0
	_ = p.rc.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.TIOCINQ) })
	return n
}

// close closes the daemon's end, if it was opened, unblocking a Read.
func (p *outputPipe) close() {
	if p.f != nil {
		p.f.Close()
	}
}
