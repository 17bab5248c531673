// Package sandboxtest is a sandbox.Factory that needs no privilege, for
// tests of everything above the sandbox (pool, API, daemon) as an ordinary
// user: each sandbox's "runtime" is a Go function run in the test process,
// talking to the environment's Runtime API over loopback as a real runtime
// would. Freezing is recorded, not enforced.
package sandboxtest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"icebox/internal/sandbox"
)

// Runtime is a fake runtime's body: api is the Runtime API's base URL
// ("http://127.0.0.1:PORT/2018-06-01"). Returning ends the runtime process
// (exit status 1); ctx ends when the sandbox is killed.
type Runtime func(ctx context.Context, api string, sb *Sandbox)

// Factory makes fake sandboxes.
type Factory struct {
	// Runtime chooses each new sandbox's runtime. Nil: Echo for every one.
	Runtime func(spec sandbox.Spec) Runtime

	mu   sync.Mutex
	made []*Sandbox
}

var _ sandbox.Factory = (*Factory)(nil)

// Create builds a sandbox whose listeners are on loopback.
func (f *Factory) Create(ctx context.Context, spec sandbox.Spec) (_ sandbox.Sandbox, err error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	sb := &Sandbox{Spec: spec, done: make(chan struct{})}
	defer func() {
		if err != nil {
			sb.Destroy()
		}
	}()
	if sb.l, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return nil, err
	}
	if sb.apiL, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return nil, err
	}
	if sb.outR, sb.outW, err = os.Pipe(); err != nil {
		return nil, err
	}
	sb.run = Echo
	if f.Runtime != nil {
		sb.run = f.Runtime(spec)
	}
	f.mu.Lock()
	f.made = append(f.made, sb)
	f.mu.Unlock()
	return sb, nil
}

// Made lists the sandboxes created so far.
func (f *Factory) Made() []*Sandbox {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*Sandbox(nil), f.made...)
}

// Sandbox is one fake sandbox.
type Sandbox struct {
	Spec sandbox.Spec

	l, apiL    net.Listener
	outR, outW *os.File
	run        Runtime
	cancel     context.CancelFunc
	done       chan struct{}
	once       sync.Once
	exit       sandbox.ExitStatus
	frozen     atomic.Bool
	freezes    atomic.Int32
	destroyed  atomic.Bool
	written    atomic.Int64
	read       atomic.Int64
}

var _ sandbox.Sandbox = (*Sandbox)(nil)

func (s *Sandbox) Listener() net.Listener    { return s.l }
func (s *Sandbox) APIListener() net.Listener { return s.apiL }
func (s *Sandbox) Output() io.Reader         { return output{s} }
func (s *Sandbox) OutputPending() int        { return int(s.written.Load() - s.read.Load()) }

// APIAddr is where icebox's API is served for this sandbox's code.
func (s *Sandbox) APIAddr() string { return s.apiL.Addr().String() }

// Log writes a line of runtime output, as the runtime's stdout would.
func (s *Sandbox) Log(format string, args ...any) {
	n, _ := fmt.Fprintf(s.outW, format, args...)
	s.written.Add(int64(n))
}

type output struct{ s *Sandbox }

func (o output) Read(b []byte) (int, error) {
	n, err := o.s.outR.Read(b)
	o.s.read.Add(int64(n))
	return n, err
}

func (s *Sandbox) Start() error {
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() {
		s.run(ctx, "http://"+s.l.Addr().String()+"/2018-06-01", s)
		s.end(sandbox.ExitStatus{Code: 1})
	}()
	return nil
}

func (s *Sandbox) end(st sandbox.ExitStatus) {
	s.once.Do(func() {
		s.exit = st
		s.outW.Close()
		close(s.done)
	})
}

func (s *Sandbox) Freeze() error {
	s.frozen.Store(true)
	s.freezes.Add(1)
	return nil
}

func (s *Sandbox) Thaw() error { s.frozen.Store(false); return nil }

// Frozen says whether the sandbox is frozen now; Freezes counts freezes.
func (s *Sandbox) Frozen() bool    { return s.frozen.Load() }
func (s *Sandbox) Freezes() int    { return int(s.freezes.Load()) }
func (s *Sandbox) Destroyed() bool { return s.destroyed.Load() }

func (s *Sandbox) Kill() error {
	if s.cancel != nil {
		s.cancel()
	}
	s.end(sandbox.ExitStatus{Signal: syscall.SIGKILL})
	return nil
}

func (s *Sandbox) Done() <-chan struct{}    { return s.done }
func (s *Sandbox) Exit() sandbox.ExitStatus { return s.exit }
func (s *Sandbox) Stats() sandbox.Stats     { return sandbox.Stats{MaxMemoryBytes: 10 << 20} }

func (s *Sandbox) Destroy() error {
	s.Kill()
	s.destroyed.Store(true)
	for _, c := range []io.Closer{s.l, s.apiL, s.outR} {
		if c != nil {
			c.Close()
		}
	}
	return nil
}

// Echo is a well-behaved runtime: it answers every event with its payload.
func Echo(ctx context.Context, api string, sb *Sandbox) {
	for ctx.Err() == nil {
		id, payload, err := Next(ctx, api)
		if err != nil {
			return
		}
		if Respond(ctx, api, id, "response", payload) != nil {
			return
		}
	}
}

// Next long-polls for the next event: its request id and payload.
func Next(ctx context.Context, api string) (id string, payload []byte, err error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, api+"/runtime/invocation/next", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	payload, err = io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", nil, fmt.Errorf("next: %s: %s", resp.Status, payload)
	}
	return resp.Header.Get("Lambda-Runtime-Aws-Request-Id"), payload, err
}

// Respond posts body to the invocation's "response" or "error" endpoint.
func Respond(ctx context.Context, api, id, kind string, body []byte) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, api+"/runtime/invocation/"+id+"/"+kind, bytes.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("%s: %s", kind, resp.Status)
	}
	return nil
}
