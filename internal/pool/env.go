package pool

import (
	"bufio"
	"sync"
	"sync/atomic"
	"time"

	"icebox/internal/environment"
	"icebox/internal/runtimeapi"
	"icebox/internal/sandbox"
)

// Every environment's life is an environment.Env; its Runtime API server
// is a thin HTTP layer over it.
var _ runtimeapi.Environment = (*environment.Env)(nil)

// env is one execution environment as the pool keeps it: its life (state,
// hand-over, freezing, call outcomes) is in life; the pool adds what it
// needs to pick, bill, log and retire it.
type env struct {
	id        string
	key       string // model.Function.ConfigKey of what it was built from
	name      string // function name
	memoryMB  int    // reserved from the pool's memory budget
	logStream string
	life      *environment.Env
	sb        sandbox.Sandbox
	api       *runtimeapi.Server
	log       LogWriter
	// retireAt is when the environment stops taking calls because its
	// credentials would expire during one; zero means never.
	retireAt time.Time

	mu sync.Mutex
	// lastUsed is when its last call ended, for idle timeouts and eviction.
	lastUsed time.Time
	// tail collects the current invocation's log lines for X-Amz-Log-Result;
	// nil between invocations. It points at tailBuf, reused from call to call.
	tail    *tailBuffer
	tailBuf tailBuffer
	// pumpCond is signalled whenever pumped or pumpEnded change.
	pumpCond  *sync.Cond
	pumped    int64 // output bytes fully handled by the pump
	pumpEnded bool

	read atomic.Int64 // output bytes taken from the pipe
	// maxMemory is the sandbox's Max Memory Used as of its last call's end,
	// for the status page (which must not read the sandbox's stats while
	// a call does).
	maxMemory atomic.Uint64
}

// retireMargin is how long before its credentials expire an environment
// is retired: the longest call (15 minutes) plus a minute.
const retireMargin = 16 * time.Minute

// retired reports whether the environment may no longer take calls.
func (e *env) retired(now time.Time) bool {
	return !e.retireAt.IsZero() && now.After(e.retireAt)
}

// pump copies the runtime's output into the log store and, while an
// invocation is running, into its tail buffer. Lines are cut at 256 KiB so a
// flood can't grow memory.
func (e *env) pump() {
	const maxLine = 256 << 10
	r := bufio.NewReaderSize(countingReader{e}, 64<<10)
	var partial []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(chunk) > 0 {
			if len(partial)+len(chunk) <= maxLine {
				partial = append(partial, chunk...)
			}
			if chunk[len(chunk)-1] == '\n' || len(partial) >= maxLine {
				e.emit(partial)
				partial = partial[:0]
			}
		}
		end := err != nil && err != bufio.ErrBufferFull
		if end && len(partial) > 0 {
			e.emit(partial)
		}
		e.mu.Lock()
		e.pumped += int64(len(chunk))
		e.pumpEnded = end
		e.pumpCond.Broadcast()
		e.mu.Unlock()
		if end {
			return
		}
	}
}

// countingReader counts the bytes taken from the runtime's output.
type countingReader struct{ e *env }

func (c countingReader) Read(b []byte) (int, error) {
	n, err := c.e.sb.Output().Read(b)
	c.e.read.Add(int64(n))
	return n, err
}

func (e *env) emit(line []byte) {
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
	}
	msg := string(line)
	e.log.Write(time.Now(), msg)
	e.mu.Lock()
	if e.tail != nil {
		e.tail.add(msg)
	}
	e.mu.Unlock()
}

// syncOutput waits until everything the runtime wrote so far has been
// pumped, so log lines land before END/REPORT and in the tail. A runtime
// writes its logs before it posts the response, so they are in the pipe by
// the time we get here: what was read plus what is still in the pipe is the
// target. (Reading the two in this order can only undercount, in the
// instant between a read returning and its count being added.)
func (e *env) syncOutput() {
	target := e.read.Load() + int64(e.sb.OutputPending())
	e.mu.Lock()
	defer e.mu.Unlock()
	for !e.pumpEnded && e.pumped < target {
		e.pumpCond.Wait()
	}
}

// writeLog records a platform line (START, END, REPORT…) in the log and tail.
func (e *env) writeLog(line string) {
	e.log.Write(time.Now(), line)
	e.mu.Lock()
	if e.tail != nil {
		e.tail.add(line)
	}
	e.mu.Unlock()
}

// tailBuffer keeps the last 4 KB of an invocation's log.
type tailBuffer struct{ b []byte }

const tailLimit = 4096

func (t *tailBuffer) add(line string) {
	t.b = append(t.b, line...)
	t.b = append(t.b, '\n')
	if len(t.b) > 2*tailLimit {
		t.b = append(t.b[:0], t.b[len(t.b)-tailLimit:]...)
	}
}

// reset empties the buffer for a new invocation, keeping its array unless a
// long line grew it well past the limit (an idle environment should not hold
// it).
func (t *tailBuffer) reset() *tailBuffer {
	if cap(t.b) > 4*tailLimit {
		t.b = nil
	}
	t.b = t.b[:0]
	return t
}

func (t *tailBuffer) bytes() []byte {
	if len(t.b) > tailLimit {
		return t.b[len(t.b)-tailLimit:]
	}
	return t.b
}
