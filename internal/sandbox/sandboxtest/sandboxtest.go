// Package sandboxtest is a sandbox.Factory that needs no privilege, for
// tests of everything above the sandbox (pool, API, daemon) as an ordinary
// user: each sandbox's "runtime" is a Go function run in the test process,
// talking to the environment's Runtime API over loopback as a real runtime
// would. Freezing is recorded, not enforced; instead, an event that reaches
// a runtime while its sandbox is frozen is counted (DeliveredFrozen), since
// a real frozen runtime could not have received it.
package sandboxtest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"icebox/internal/sandbox"
)

// Runtime is a fake runtime's body. It talks to the Runtime API through sb
// (Next, Respond, or RuntimeAPI for anything else). Returning ends the
// runtime process with exit status 1, unless it ended itself with End; ctx
// ends when the sandbox is killed.
type Runtime func(ctx context.Context, sb *Sandbox)

// Factory makes fake sandboxes.
type Factory struct {
	// Runtime chooses the runtime of each new sandbox; n counts the
	// sandboxes made before it (0 for the first). Nil: Echo for every one.
	// A runtime that depends on the function reads sb.Spec.
	Runtime func(n int) Runtime
	// Build, when set, runs first in each Create with its ctx (n as for
	// Runtime); an error it returns fails Create, as a real sandbox build
	// that fails or outlives ctx on a busy host does.
	Build func(ctx context.Context, n int) error

	mu   sync.Mutex
	made []*Sandbox
}

var _ sandbox.Factory = (*Factory)(nil)

// Create builds a sandbox whose listeners are on loopback.
func (f *Factory) Create(ctx context.Context, spec sandbox.Spec) (_ sandbox.Sandbox, err error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if f.Build != nil {
		f.mu.Lock()
		n := len(f.made)
		f.mu.Unlock()
		if err := f.Build(ctx, n); err != nil {
			return nil, err
		}
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
	if sb.out.r, sb.out.w, err = os.Pipe(); err != nil {
		return nil, err
	}
	if sb.tel.r, sb.tel.w, err = os.Pipe(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	sb.run = Echo
	if f.Runtime != nil {
		sb.run = f.Runtime(len(f.made))
	}
	f.made = append(f.made, sb)
	return sb, nil
}

// Made lists the sandboxes created so far, in order.
func (f *Factory) Made() []*Sandbox {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*Sandbox(nil), f.made...)
}

// Sandbox is one fake sandbox.
type Sandbox struct {
	Spec sandbox.Spec

	l, apiL   net.Listener
	out, tel  pipe // stdout and stderr; the telemetry descriptor
	run       Runtime
	cancel    context.CancelFunc
	done      chan struct{}
	once      sync.Once
	exit      sandbox.ExitStatus // set before done is closed
	oom       atomic.Bool
	frozen    atomic.Bool
	freezes   atomic.Int32
	delivered atomic.Int32 // events Next received while frozen
	destroyed atomic.Bool
	// NetIn and NetOut are the traffic its Stats report (tests set them).
	NetIn, NetOut atomic.Uint64
}

// pipe is one of the runtime's outputs, counting what crosses it.
type pipe struct {
	r, w    *os.File
	written atomic.Int64
}

func (p *pipe) Read(b []byte) (int, error) { return p.r.Read(b) }

func (p *pipe) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.written.Add(int64(n))
	return n, err
}

var _ sandbox.Sandbox = (*Sandbox)(nil)

func (s *Sandbox) Listener() net.Listener    { return s.l }
func (s *Sandbox) APIListener() net.Listener { return s.apiL }
func (s *Sandbox) Output() io.Reader         { return &s.out }
func (s *Sandbox) OutputWritten() int64      { return s.out.written.Load() }
func (s *Sandbox) Telemetry() io.Reader      { return &s.tel }
func (s *Sandbox) TelemetryWritten() int64   { return s.tel.written.Load() }

// RuntimeAPI is the Runtime API's base URL, "http://127.0.0.1:PORT/2018-06-01".
func (s *Sandbox) RuntimeAPI() string { return "http://" + s.l.Addr().String() + "/2018-06-01" }

// APIAddr is where icebox's API is served for this sandbox's code.
func (s *Sandbox) APIAddr() string { return s.apiL.Addr().String() }

// Log writes a line of runtime output, as the runtime's stdout would.
func (s *Sandbox) Log(format string, args ...any) {
	fmt.Fprintf(&s.out, format, args...)
}

// WriteTelemetry writes b to the runtime's telemetry descriptor, as a
// runtime client writes a framed record.
func (s *Sandbox) WriteTelemetry(b []byte) {
	s.tel.Write(b)
}

// ExtensionOutput is empty: a fake sandbox starts no extension processes.
func (s *Sandbox) ExtensionOutput() io.Reader    { return strings.NewReader("") }
func (s *Sandbox) ExtensionOutputWritten() int64 { return 0 }

// StartExtensions does nothing: a fake sandbox starts no extension
// processes.
func (s *Sandbox) StartExtensions() error { return nil }

func (s *Sandbox) Start() error {
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() {
		s.run(ctx, s)
		s.End(sandbox.ExitStatus{Code: 1}, false)
	}()
	return nil
}

// End makes the runtime process exit now with st; oom says the memory
// limit killed it (Stats then counts an OOM kill). Only the first end of
// the process counts, whether by End, Kill or the runtime returning.
func (s *Sandbox) End(st sandbox.ExitStatus, oom bool) {
	s.once.Do(func() {
		s.exit = st
		s.oom.Store(oom)
		s.out.w.Close()
		s.tel.w.Close()
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

// DeliveredFrozen counts the events Next received while the sandbox was
// frozen and not thawed within thawWait. Anything but 0 is a bug in what
// drives the sandbox: an event handed over must be followed by a thaw.
func (s *Sandbox) DeliveredFrozen() int { return int(s.delivered.Load()) }

func (s *Sandbox) Kill() error {
	if s.cancel != nil {
		s.cancel()
	}
	s.End(sandbox.ExitStatus{Signal: syscall.SIGKILL}, false)
	return nil
}

// SignalRuntime ends the runtime by the signal: a fake sandbox runs no
// extension to outlive it.
func (s *Sandbox) SignalRuntime(sig syscall.Signal) error {
	if s.cancel != nil {
		s.cancel()
	}
	s.End(sandbox.ExitStatus{Signal: sig}, false)
	return nil
}

func (s *Sandbox) Done() <-chan struct{} { return s.done }

// Dial connects to the port on the host's loopback, which a fake sandbox
// shares.
func (s *Sandbox) Dial(ctx context.Context, port int) (net.Conn, error) {
	return (&net.Dialer{}).DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
}

// ExtensionExits reports nothing: a fake sandbox starts no extension
// processes (its runtime may register as an internal extension).
func (s *Sandbox) ExtensionExits() <-chan sandbox.ExtensionExit { return nil }
func (s *Sandbox) Exit() sandbox.ExitStatus                     { return s.exit }

func (s *Sandbox) Stats() sandbox.Stats {
	st := sandbox.Stats{MaxMemoryBytes: 10 << 20, NetReceivedBytes: s.NetIn.Load(), NetSentBytes: s.NetOut.Load()}
	if s.oom.Load() {
		st.OOMKills = 1
	}
	return st
}

func (s *Sandbox) Destroy() error {
	s.Kill()
	s.destroyed.Store(true)
	for _, c := range []io.Closer{s.l, s.apiL, s.out.r, s.tel.r} {
		if c != nil {
			c.Close()
		}
	}
	return nil
}

// Echo is a well-behaved runtime: it answers every event with its payload.
func Echo(ctx context.Context, sb *Sandbox) {
	for ctx.Err() == nil {
		id, payload, err := sb.Next(ctx)
		if err != nil {
			return
		}
		if sb.Respond(ctx, id, "response", payload) != nil {
			return
		}
	}
}

// Next long-polls for the next event: its request id and payload. It
// counts an event that arrives while the sandbox is frozen (DeliveredFrozen).
func (s *Sandbox) Next(ctx context.Context) (id string, payload []byte, err error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.RuntimeAPI()+"/runtime/invocation/next", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK && !s.thawedWithin(ctx, thawWait) {
		s.delivered.Add(1)
	}
	payload, err = io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", nil, fmt.Errorf("next: %s: %s", resp.Status, payload)
	}
	return resp.Header.Get("Lambda-Runtime-Aws-Request-Id"), payload, err
}

// thawWait bounds how long an event that reached a frozen runtime waits
// for the thaw before it counts as delivered frozen.
const thawWait = 5 * time.Second

// thawedWithin waits until the sandbox is not frozen, as a real frozen
// runtime would before it could read anything: the Runtime API writes a
// small event to a frozen runtime's connection, then thaws it. False if it
// is still frozen after d; true if the runtime ends meanwhile (it never
// ran the event).
func (s *Sandbox) thawedWithin(ctx context.Context, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for s.Frozen() {
		if ctx.Err() != nil {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Microsecond)
	}
	return true
}

// Respond posts body to the invocation's "response" or "error" endpoint.
func (s *Sandbox) Respond(ctx context.Context, id, kind string, body []byte) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.RuntimeAPI()+"/runtime/invocation/"+id+"/"+kind, bytes.NewReader(body))
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
