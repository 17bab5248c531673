package pool

import (
	"sync"
	"sync/atomic"
	"time"

	"icebox/internal/environment"
	"icebox/internal/model"
	"icebox/internal/runtimeapi"
	"icebox/internal/sandbox"
	"icebox/internal/telemetry"
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
	hub       *telemetry.Hub // its Telemetry API
	log       LogWriter
	logging   *model.LoggingConfig
	// provision owns the environment when it is a provisioned one; guarded
	// by the pool's mu.
	provision *provision
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
	// settling is closed when the END and REPORT of a call whose
	// extensions were still working when it was answered are written; nil
	// when none is.
	settling chan struct{}
	// pumpCond is signalled whenever a stream's pumped or ended change.
	pumpCond *sync.Cond
	// out is the runtime's stdout and stderr, tel its telemetry
	// descriptor, ext the extensions' stdout and stderr.
	out, tel, ext stream
	// maxMemory is the sandbox's Max Memory Used as of its last call's end,
	// for the status page (which must not read the sandbox's stats while
	// a call does).
	maxMemory atomic.Uint64
	// counted is the sandbox's network traffic already added to its
	// function's metrics; guarded by mu.
	counted struct{ in, out uint64 }
}

// retireMargin is how long before its credentials expire an environment
// is retired: the longest call (15 minutes) plus a minute.
const retireMargin = 16 * time.Minute

// retired reports whether the environment may no longer take calls.
func (e *env) retired(now time.Time) bool {
	return !e.retireAt.IsZero() && now.After(e.retireAt)
}

// writeLog records a line in the log and the tail.
func (e *env) writeLog(ts time.Time, line string) {
	e.log.Write(ts, line)
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
