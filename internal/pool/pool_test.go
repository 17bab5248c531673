package pool

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"icebox/internal/environment/envtest"
	"icebox/internal/metrics"
	"icebox/internal/model"
	"icebox/internal/sandbox"
)

// behaviour is a fake runtime: it talks to the Runtime API at base.
type behaviour func(ctx context.Context, base string, sb *fakeSandbox)

type fakeFactory struct {
	mu      sync.Mutex
	made    []*fakeSandbox
	runtime func(n int) behaviour // n counts sandboxes made, from 0
	withAPI bool                  // give each sandbox an API listener
}

func (f *fakeFactory) Create(ctx context.Context, spec sandbox.Spec) (sandbox.Sandbox, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	sb := &fakeSandbox{Sandbox: envtest.New(), spec: spec, l: l, outR: r, outW: w, run: f.runtime(len(f.made))}
	if f.withAPI {
		if sb.api, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return nil, err
		}
	}
	f.made = append(f.made, sb)
	f.mu.Unlock()
	return sb, nil
}

func (f *fakeFactory) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.made)
}

// fakeSandbox runs a fake runtime in a goroutine, against the Runtime API
// on a loopback listener; freezing and the runtime's end are envtest's.
type fakeSandbox struct {
	*envtest.Sandbox
	spec       sandbox.Spec
	l          net.Listener
	api        net.Listener // set when the factory serves icebox's API
	outR, outW *os.File
	run        behaviour
	cancel     context.CancelFunc
	outOnce    sync.Once
	// deliveredFrozen counts events the runtime received while frozen: a bug.
	deliveredFrozen atomic.Int32
	destroyed       atomic.Bool
	written, read   atomic.Int64
}

func (s *fakeSandbox) Listener() net.Listener    { return s.l }
func (s *fakeSandbox) APIListener() net.Listener { return s.api }
func (s *fakeSandbox) Output() io.Reader         { return fakeOutput{s} }
func (s *fakeSandbox) OutputPending() int        { return int(s.written.Load() - s.read.Load()) }

// log writes a line of runtime output, as a runtime's stdout would.
func (s *fakeSandbox) log(format string, args ...any) {
	n, _ := fmt.Fprintf(s.outW, format, args...)
	s.written.Add(int64(n))
}

type fakeOutput struct{ s *fakeSandbox }

func (c fakeOutput) Read(b []byte) (int, error) {
	n, err := c.s.outR.Read(b)
	c.s.read.Add(int64(n))
	return n, err
}

func (s *fakeSandbox) frozen() bool {
	frozen, _, _ := s.Frozen()
	return frozen
}

func (s *fakeSandbox) Start() error {
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() {
		s.run(ctx, "http://"+s.l.Addr().String()+"/2018-06-01", s)
		s.end(sandbox.ExitStatus{Code: 1}, false)
	}()
	return nil
}

// end is the runtime's exit: its output closes with it.
func (s *fakeSandbox) end(st sandbox.ExitStatus, oom bool) {
	s.End(st, oom)
	s.outOnce.Do(func() { s.outW.Close() })
}

func (s *fakeSandbox) Kill() error {
	if s.cancel != nil {
		s.cancel()
	}
	s.end(sandbox.ExitStatus{Signal: syscall.SIGKILL}, false)
	return nil
}

func (s *fakeSandbox) Destroy() error {
	s.Kill()
	s.destroyed.Store(true)
	s.l.Close()
	if s.api != nil {
		s.api.Close()
	}
	return nil
}

// echo is a well-behaved runtime: it answers every event with its payload,
// prefixed by how many events it served.
func echo(ctx context.Context, base string, sb *fakeSandbox) {
	n := 0
	for ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/runtime/invocation/next", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return
		}
		if sb.frozen() {
			sb.deliveredFrozen.Add(1)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
		n++
		sb.log("log line %d\n", n)
		var ev struct{ Sleep int }
		json.Unmarshal(body, &ev)
		if ev.Sleep > 0 {
			select {
			case <-time.After(time.Duration(ev.Sleep) * time.Millisecond):
			case <-ctx.Done():
				return
			}
		}
		out := fmt.Sprintf(`{"n":%d,"event":%s}`, n, body)
		r, err := http.Post(base+"/runtime/invocation/"+id+"/response", "application/json", strings.NewReader(out))
		if err != nil {
			return
		}
		r.Body.Close()
	}
}

// initFails posts an init error and exits.
func initFails(ctx context.Context, base string, sb *fakeSandbox) {
	r, err := http.Post(base+"/runtime/init/error", "application/json", strings.NewReader(`{"errorMessage":"bad init","errorType":"Runtime.ImportModuleError"}`))
	if err == nil {
		r.Body.Close()
	}
	<-ctx.Done()
}

type codeDir string

func (c codeDir) CodeDir(context.Context, *model.Function) (string, error) { return string(c), nil }

type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) Writer(group, stream string) LogWriter { return l }
func (l *logLines) Write(_ time.Time, msg string) {
	l.mu.Lock()
	l.lines = append(l.lines, msg)
	l.mu.Unlock()
}

func newPool(t testing.TB, cfg Config, runtime func(n int) behaviour) (*Pool, *fakeFactory) {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "bootstrap"), []byte("#!/bin/sh\n"), 0o755)
	f := &fakeFactory{runtime: runtime}
	cfg.Region, cfg.AccountID = "us-east-1", "000000000000"
	if cfg.MemoryBudgetMB == 0 {
		cfg.MemoryBudgetMB = 1 << 20
	}
	p, err := New(cfg, f, codeDir(dir), &logLines{}, metrics.New(nil), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	return p, f
}

func always(b behaviour) func(int) behaviour { return func(int) behaviour { return b } }

func function(name string) model.Function {
	fn := model.Function{Name: name, Runtime: "provided.al2023", Handler: "h", Role: "arn:aws:iam::000000000000:role/r", CodeSha256: "abc"}
	fn.ApplyDefaults()
	return fn
}

func invoke(t *testing.T, p *Pool, fn model.Function, payload string) model.Result {
	t.Helper()
	res, err := p.Invoke(context.Background(), fn, &model.Invocation{RequestID: fmt.Sprintf("req-%d", time.Now().UnixNano()), Payload: []byte(payload)})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestWarmReuseAndFreeze(t *testing.T) {
	p, f := newPool(t, Config{}, always(echo))
	fn := function("f")
	r1 := invoke(t, p, fn, `{"a":1}`)
	r2 := invoke(t, p, fn, `{"a":2}`)
	if !r1.ColdStart || r2.ColdStart {
		t.Errorf("cold starts: %v %v", r1.ColdStart, r2.ColdStart)
	}
	if string(r2.Payload) != `{"n":2,"event":{"a":2}}` || f.count() != 1 {
		t.Errorf("second call %s on %d sandboxes; want the same environment", r2.Payload, f.count())
	}
	sb := f.made[0]
	waitUntil(t, "freeze after the runtime asks for more", sb.frozen)
	invoke(t, p, fn, `{}`)
	if sb.deliveredFrozen.Load() != 0 {
		t.Error("an event reached a frozen environment")
	}
	// Every /next after the first (which ends init) freezes.
	if _, freezes, _ := sb.Frozen(); freezes < 1 {
		t.Errorf("froze %d times over 3 calls", freezes)
	}
	if !strings.Contains(string(r1.LogTail), "log line 1") || !strings.Contains(string(r1.LogTail), "Init Duration") || strings.Contains(string(r2.LogTail), "Init Duration") {
		t.Errorf("tails:\n%s\n%s", r1.LogTail, r2.LogTail)
	}
}

func TestConcurrentCallsGetTheirOwnEnvironment(t *testing.T) {
	p, f := newPool(t, Config{}, always(echo))
	fn := function("f")
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); invoke(t, p, fn, `{"Sleep":100}`) }()
	}
	wg.Wait()
	if f.count() != 4 {
		t.Errorf("%d sandboxes for 4 overlapping calls", f.count())
	}
	if got := p.Counts()["idle"]; got != 4 {
		t.Errorf("idle = %d", got)
	}
}

func TestStaleEnvironmentsDrained(t *testing.T) {
	p, f := newPool(t, Config{}, always(echo))
	fn := function("f")
	invoke(t, p, fn, `{}`)
	fn2 := fn
	fn2.MemorySize = 256
	p.FunctionChanged(fn.Name, fn2.ConfigKey())
	if !f.made[0].destroyed.Load() {
		t.Error("idle environment of the old configuration kept")
	}
	r := invoke(t, p, fn2, `{}`)
	if !r.ColdStart || f.count() != 2 || f.made[1].spec.MemoryMB != 256 {
		t.Errorf("new config not used: cold=%v sandboxes=%d", r.ColdStart, f.count())
	}
	// A busy environment of an old config is destroyed when it finishes.
	done := make(chan struct{})
	go func() { invoke(t, p, fn2, `{"Sleep":200}`); close(done) }()
	time.Sleep(50 * time.Millisecond)
	p.FunctionChanged(fn.Name, "")
	<-done
	if !f.made[1].destroyed.Load() {
		t.Error("busy environment of a deleted function survived")
	}
}

func TestSuppressedInit(t *testing.T) {
	p, f := newPool(t, Config{}, func(n int) behaviour {
		if n == 0 {
			return initFails
		}
		return echo
	})
	r := invoke(t, p, function("f"), `{}`)
	if r.FunctionError != "" || f.count() != 2 {
		t.Errorf("second init attempt not made: %s on %d sandboxes", r.Payload, f.count())
	}

	p2, f2 := newPool(t, Config{}, always(initFails))
	r = invoke(t, p2, function("g"), `{}`)
	if r.FunctionError != model.FunctionErrorUnhandled || !bytes.Contains(r.Payload, []byte("Runtime.ImportModuleError")) || f2.count() != 2 {
		t.Errorf("init failing twice: %s %s on %d sandboxes", r.FunctionError, r.Payload, f2.count())
	}
	if p2.Counts()["idle"] != 0 {
		t.Error("failed environment kept")
	}
}

func TestTimeoutDestroysEnvironment(t *testing.T) {
	p, f := newPool(t, Config{}, always(echo))
	fn := function("f")
	fn.Timeout = 1
	r := invoke(t, p, fn, `{"Sleep":5000}`)
	if r.FunctionError == "" || !bytes.Contains(r.Payload, []byte(`"errorType":"Sandbox.Timedout"`)) || !bytes.Contains(r.Payload, []byte("Task timed out after 1.00 seconds")) {
		t.Errorf("timeout result %s", r.Payload)
	}
	if !f.made[0].destroyed.Load() {
		t.Error("timed-out environment not destroyed")
	}
}

func TestRuntimeExit(t *testing.T) {
	crash := func(ctx context.Context, base string, sb *fakeSandbox) {
		resp, err := http.Get(base + "/runtime/invocation/next")
		if err == nil {
			resp.Body.Close()
		}
		sb.end(sandbox.ExitStatus{Code: 2}, false)
	}
	p, _ := newPool(t, Config{}, always(crash))
	r := invoke(t, p, function("f"), `{}`)
	if !bytes.Contains(r.Payload, []byte(`"errorType":"Runtime.ExitError"`)) || !bytes.Contains(r.Payload, []byte("Runtime exited with error: exit status 2")) {
		t.Errorf("exit result %s", r.Payload)
	}
}

func TestIdleReaping(t *testing.T) {
	p, f := newPool(t, Config{IdleTimeout: 100 * time.Millisecond}, always(echo))
	invoke(t, p, function("f"), `{}`)
	waitUntil(t, "idle environment reaped", func() bool { return f.made[0].destroyed.Load() })
	if p.Counts()["idle"] != 0 {
		t.Error("reaped environment still counted")
	}
}

func TestCloseDestroysEverything(t *testing.T) {
	p, f := newPool(t, Config{}, always(echo))
	invoke(t, p, function("a"), `{}`)
	invoke(t, p, function("b"), `{}`)
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, sb := range f.made {
		if !sb.destroyed.Load() {
			t.Error("environment survived Close")
		}
	}
	if _, err := p.Invoke(context.Background(), function("a"), &model.Invocation{RequestID: "x"}); err == nil {
		t.Error("invoke after Close succeeded")
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A warm runtime that exits right after answering (as Node does after an
// uncaught error) must not take the next call down with it.
func TestRuntimeDyingBetweenCallsIsReplaced(t *testing.T) {
	answerThenExit := func(ctx context.Context, base string, sb *fakeSandbox) {
		resp, err := http.Get(base + "/runtime/invocation/next")
		if err != nil {
			return
		}
		id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
		resp.Body.Close()
		r, err := http.Post(base+"/runtime/invocation/"+id+"/response", "application/json", strings.NewReader(`"once"`))
		if err == nil {
			r.Body.Close()
		}
		time.Sleep(50 * time.Millisecond)
		sb.end(sandbox.ExitStatus{Code: 128}, false)
	}
	p, f := newPool(t, Config{}, always(answerThenExit))
	fn := function("f")
	for i := 0; i < 2; i++ {
		if r := invoke(t, p, fn, `{}`); r.FunctionError != "" || string(r.Payload) != `"once"` {
			t.Fatalf("call %d: %s %s", i, r.FunctionError, r.Payload)
		}
	}
	if f.count() != 2 {
		t.Errorf("%d sandboxes; want the second call on a fresh one", f.count())
	}
}

// A handler error is data, and the environment stays warm.
func TestFunctionError(t *testing.T) {
	failing := func(ctx context.Context, base string, sb *fakeSandbox) {
		for ctx.Err() == nil {
			resp, err := http.Get(base + "/runtime/invocation/next")
			if err != nil {
				return
			}
			resp.Body.Close()
			id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
			r, err := http.Post(base+"/runtime/invocation/"+id+"/error", "application/json", strings.NewReader(`{"errorMessage":"no","errorType":"ValueError"}`))
			if err != nil {
				return
			}
			r.Body.Close()
		}
	}
	p, f := newPool(t, Config{}, always(failing))
	for range 2 {
		r := invoke(t, p, function("f"), `{}`)
		if r.FunctionError != model.FunctionErrorUnhandled || string(r.Payload) != `{"errorMessage":"no","errorType":"ValueError"}` {
			t.Errorf("result %s %s", r.FunctionError, r.Payload)
		}
	}
	if f.count() != 1 {
		t.Errorf("%d sandboxes; a function error must not cost the environment", f.count())
	}
}

func TestOutOfMemory(t *testing.T) {
	hog := func(ctx context.Context, base string, sb *fakeSandbox) {
		resp, err := http.Get(base + "/runtime/invocation/next")
		if err == nil {
			resp.Body.Close()
		}
		sb.end(sandbox.ExitStatus{Signal: syscall.SIGKILL}, true)
	}
	p, f := newPool(t, Config{}, always(hog))
	r := invoke(t, p, function("f"), `{}`)
	if r.FunctionError != model.FunctionErrorUnhandled || !bytes.Contains(r.Payload, []byte(`"errorType":"Runtime.OutOfMemory"`)) || !bytes.Contains(r.Payload, []byte("Runtime exited with error: signal: killed")) {
		t.Errorf("oom result %s", r.Payload)
	}
	if !f.made[0].destroyed.Load() || p.Counts()["idle"] != 0 {
		t.Error("OOM-killed environment kept")
	}
}

// A cold environment whose runtime drops its first /next and dies is not
// retried, whether or not the event reached it: the call fails as the
// runtime's exit.
func TestColdRuntimeDyingBeforeTheEvent(t *testing.T) {
	dropAndDie := func(ctx context.Context, base string, sb *fakeSandbox) {
		// The first /next ends init, and its connection drops at once.
		c, err := net.Dial("tcp", sb.l.Addr().String())
		if err != nil {
			return
		}
		fmt.Fprintf(c, "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n")
		c.Close()
		time.Sleep(50 * time.Millisecond)
		sb.end(sandbox.ExitStatus{Code: 3}, false)
	}
	p, f := newPool(t, Config{}, always(dropAndDie))
	r := invoke(t, p, function("f"), `{}`)
	if !bytes.Contains(r.Payload, []byte(`"errorType":"Runtime.ExitError"`)) || !bytes.Contains(r.Payload, []byte("exit status 3")) || f.count() != 1 {
		t.Errorf("result %s on %d sandboxes", r.Payload, f.count())
	}
}

// Counts and the gauges report phases: frozen environments are idle.
func TestCountsByPhase(t *testing.T) {
	p, f := newPool(t, Config{}, always(echo))
	invoke(t, p, function("f"), `{}`)
	waitUntil(t, "the freeze", f.made[0].frozen)
	if c := p.Counts(); c["idle"] != 1 || len(c) != 1 {
		t.Errorf("counts %v", c)
	}
	if g := testutil.ToFloat64(p.metrics.Environment("idle")); g != 1 {
		t.Errorf("idle gauge %v", g)
	}
	for _, phase := range []string{"creating", "initializing", "busy", "draining"} {
		if g := testutil.ToFloat64(p.metrics.Environment(phase)); g != 0 {
			t.Errorf("%s gauge %v", phase, g)
		}
	}
}

// sandboxAPI records its freeze hooks and whether the sandbox was frozen
// when each ran.
type sandboxAPI struct {
	mu    sync.Mutex
	f     *fakeFactory
	calls []string
}

func (a *sandboxAPI) ServeEnvironment(l net.Listener) (freezing, thawed func()) {
	record := func(name string) func() {
		return func() {
			a.f.mu.Lock()
			sb := a.f.made[len(a.f.made)-1]
			a.f.mu.Unlock()
			a.mu.Lock()
			defer a.mu.Unlock()
			a.calls = append(a.calls, fmt.Sprintf("%s (frozen %v)", name, sb.frozen()))
		}
	}
	return record("freezing"), record("thawed")
}

// The sandbox API hears of every freeze right before it and of every thaw
// right after it.
func TestFreezeHooks(t *testing.T) {
	f := &fakeFactory{runtime: always(echo), withAPI: true}
	api := &sandboxAPI{f: f}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "bootstrap"), []byte("#!/bin/sh\n"), 0o755)
	p, err := New(Config{Region: "us-east-1", AccountID: "000000000000", MemoryBudgetMB: 1 << 20, SandboxAPI: api},
		f, codeDir(dir), &logLines{}, metrics.New(nil), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	fn := function("f")
	for range 3 {
		invoke(t, p, fn, `{}`)
		waitUntil(t, "the freeze", f.made[0].frozen)
	}
	api.mu.Lock()
	got := strings.Join(api.calls, ", ")
	api.mu.Unlock()
	want := "freezing (frozen false), thawed (frozen false), freezing (frozen false), thawed (frozen false), freezing (frozen false)"
	if got != want {
		t.Errorf("hooks: %s\nwant   %s", got, want)
	}
}
