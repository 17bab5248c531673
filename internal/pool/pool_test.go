package pool

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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

	"icebox/internal/errdefs"
	"icebox/internal/metrics"
	"icebox/internal/model"
	"icebox/internal/sandbox"
	"icebox/internal/sandbox/sandboxtest"
	"icebox/internal/testkit"
)

// echo is a well-behaved runtime: it answers every event with its payload,
// prefixed by how many events it served, and logs a line for each. An
// event {"Sleep":ms} takes that long.
func echo(ctx context.Context, sb *sandboxtest.Sandbox) {
	for n := 1; ctx.Err() == nil; n++ {
		id, body, err := sb.Next(ctx)
		if err != nil {
			return
		}
		sb.Log("log line %d\n", n)
		var ev struct{ Sleep int }
		json.Unmarshal(body, &ev)
		if ev.Sleep > 0 {
			select {
			case <-time.After(time.Duration(ev.Sleep) * time.Millisecond):
			case <-ctx.Done():
				return
			}
		}
		if sb.Respond(ctx, id, "response", fmt.Appendf(nil, `{"n":%d,"event":%s}`, n, body)) != nil {
			return
		}
	}
}

// initFails posts an init error and waits to be killed.
func initFails(ctx context.Context, sb *sandboxtest.Sandbox) {
	r, err := http.Post(sb.RuntimeAPI()+"/runtime/init/error", "application/json", strings.NewReader(`{"errorMessage":"bad init","errorType":"Runtime.ImportModuleError"}`))
	if err == nil {
		r.Body.Close()
	}
	<-ctx.Done()
}

type codeDir string

func (c codeDir) CodeDir(context.Context, *model.Function) (string, error) { return string(c), nil }
func (c codeDir) OptDir(context.Context, *model.Function) (string, error)  { return "", nil }

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

// newPool makes a pool whose sandboxes are fakes running the runtime
// chosen for each (by how many were made before it).
func newPool(t testing.TB, cfg Config, runtime func(n int) sandboxtest.Runtime) (*Pool, *sandboxtest.Factory) {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "bootstrap"), []byte("#!/bin/sh\n"), 0o755)
	f := &sandboxtest.Factory{Runtime: runtime}
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

func always(r sandboxtest.Runtime) func(int) sandboxtest.Runtime {
	return func(int) sandboxtest.Runtime { return r }
}

func function(name string) model.Function {
	fn := model.Function{Name: name, Runtime: "provided.al2023", Handler: "h", Role: "arn:aws:iam::000000000000:role/r", CodeSha256: "abc"}
	fn.ApplyDefaults()
	return fn
}

func invocation(payload string) *model.Invocation {
	return &model.Invocation{RequestID: fmt.Sprintf("req-%d", time.Now().UnixNano()), Payload: []byte(payload)}
}

func invoke(t *testing.T, p *Pool, fn model.Function, payload string) model.Result {
	t.Helper()
	res, err := p.Invoke(context.Background(), fn, invocation(payload))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// invoked is the end of a call made in the background.
type invoked struct {
	res model.Result
	err error
}

// invokeAsync makes a call in the background, for a test that acts while
// it runs.
func invokeAsync(p *Pool, fn model.Function, payload string) <-chan invoked {
	ch := make(chan invoked, 1)
	go func() {
		res, err := p.Invoke(context.Background(), fn, invocation(payload))
		ch <- invoked{res, err}
	}()
	return ch
}

// result waits for a call made with invokeAsync.
func result(t *testing.T, ch <-chan invoked) model.Result {
	t.Helper()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatal(r.err)
		}
		return r.res
	case <-time.After(10 * time.Second):
		t.Fatal("the call never returned")
		return model.Result{}
	}
}

// waitDone waits for a fake sandbox's runtime to end.
func waitDone(t *testing.T, sb *sandboxtest.Sandbox, what string) {
	t.Helper()
	select {
	case <-sb.Done():
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out after 5s waiting for %s", what)
	}
}

func TestWarmReuseAndFreeze(t *testing.T) {
	p, f := newPool(t, Config{}, always(echo))
	fn := function("f")
	r1 := invoke(t, p, fn, `{"a":1}`)
	r2 := invoke(t, p, fn, `{"a":2}`)
	if !r1.ColdStart || r2.ColdStart {
		t.Errorf("cold starts: %v %v", r1.ColdStart, r2.ColdStart)
	}
	if n := len(f.Made()); string(r2.Payload) != `{"n":2,"event":{"a":2}}` || n != 1 {
		t.Errorf("second call %s on %d sandboxes; want the same environment", r2.Payload, n)
	}
	sb := f.Made()[0]
	testkit.WaitFor(t, 5*time.Second, "freeze after the runtime asks for more", sb.Frozen)
	invoke(t, p, fn, `{}`)
	if sb.DeliveredFrozen() != 0 {
		t.Error("an event reached a frozen environment")
	}
	// Every /next after the first (which ends init) freezes.
	if freezes := sb.Freezes(); freezes < 1 {
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
		// Each call takes 100 ms, so the four overlap.
		go func() { defer wg.Done(); invoke(t, p, fn, `{"Sleep":100}`) }()
	}
	wg.Wait()
	if n := len(f.Made()); n != 4 {
		t.Errorf("%d sandboxes for 4 overlapping calls", n)
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
	p.FunctionChanged(fn.Name, []string{fn2.ConfigKey()})
	if !f.Made()[0].Destroyed() {
		t.Error("idle environment of the old configuration kept")
	}
	r := invoke(t, p, fn2, `{}`)
	if n := len(f.Made()); !r.ColdStart || n != 2 || f.Made()[1].Spec.MemoryMB != 256 {
		t.Errorf("new config not used: cold=%v sandboxes=%d", r.ColdStart, n)
	}
	// A busy environment of an old config is destroyed when it finishes.
	call := invokeAsync(p, fn2, `{"Sleep":200}`)
	testkit.WaitFor(t, 5*time.Second, "the call to be busy", func() bool { return p.Counts()["busy"] == 1 })
	p.FunctionChanged(fn.Name, nil)
	result(t, call)
	if !f.Made()[1].Destroyed() {
		t.Error("busy environment of a deleted function survived")
	}
}

func TestSuppressedInit(t *testing.T) {
	p, f := newPool(t, Config{}, func(n int) sandboxtest.Runtime {
		if n == 0 {
			return initFails
		}
		return echo
	})
	r := invoke(t, p, function("f"), `{}`)
	if n := len(f.Made()); r.FunctionError != "" || n != 2 {
		t.Errorf("second init attempt not made: %s on %d sandboxes", r.Payload, n)
	}

	p2, f2 := newPool(t, Config{}, always(initFails))
	r = invoke(t, p2, function("g"), `{}`)
	if n := len(f2.Made()); r.FunctionError != model.FunctionErrorUnhandled || !bytes.Contains(r.Payload, []byte("Runtime.ImportModuleError")) || n != 2 {
		t.Errorf("init failing twice: %s %s on %d sandboxes", r.FunctionError, r.Payload, n)
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
	if !f.Made()[0].Destroyed() {
		t.Error("timed-out environment not destroyed")
	}
}

func TestRuntimeExit(t *testing.T) {
	crash := func(ctx context.Context, sb *sandboxtest.Sandbox) {
		sb.Next(ctx)
		sb.End(sandbox.ExitStatus{Code: 2}, false)
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
	testkit.WaitFor(t, 5*time.Second, "idle environment reaped", f.Made()[0].Destroyed)
	if p.Counts()["idle"] != 0 {
		t.Error("reaped environment still counted")
	}
}

// withExtension is echo with an internal extension subscribed to INVOKE
// that works on each call until the test sends on work.
func withExtension(work <-chan struct{}) sandboxtest.Runtime {
	return func(ctx context.Context, sb *sandboxtest.Sandbox) {
		base := strings.TrimSuffix(sb.RuntimeAPI(), "/2018-06-01") + "/2020-01-01/extension"
		req, _ := http.NewRequestWithContext(ctx, "POST", base+"/register", strings.NewReader(`{"events":["INVOKE"]}`))
		req.Header.Set("Lambda-Extension-Name", "worker")
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			return
		}
		r.Body.Close()
		id := r.Header.Get("Lambda-Extension-Identifier")
		go func() {
			for first := true; ; first = false {
				if !first {
					select {
					case <-work:
					case <-ctx.Done():
						return
					}
				}
				req, _ := http.NewRequestWithContext(ctx, "GET", base+"/event/next", nil)
				req.Header.Set("Lambda-Extension-Identifier", id)
				r, err := http.DefaultClient.Do(req)
				if err != nil {
					return
				}
				r.Body.Close()
			}
		}()
		echo(ctx, sb)
	}
}

// An environment whose extension still works on the call just answered is
// in use, not idle: the idle reaper leaves it, however long the work takes,
// and the next call gets it once the work is done.
func TestIdleReapingSparesWorkingExtensions(t *testing.T) {
	work := make(chan struct{})
	p, f := newPool(t, Config{IdleTimeout: 100 * time.Millisecond}, always(withExtension(work)))
	fn := function("f")
	invoke(t, p, fn, `{}`)
	time.Sleep(300 * time.Millisecond) // several reaper ticks past the idle timeout
	next := invokeAsync(p, fn, `{}`)
	work <- struct{}{}
	if n := result(t, next).Payload; !bytes.Contains(n, []byte(`"n":2`)) {
		t.Errorf("the next call ran in another environment: %s", n)
	}
	work <- struct{}{}
	testkit.WaitFor(t, 5*time.Second, "the environment reaped once idle", f.Made()[0].Destroyed)
}

// The memory budget evicts idle environments for a new one, never one
// whose extensions still work on the call just answered.
func TestEvictionSparesWorkingExtensions(t *testing.T) {
	work := make(chan struct{})
	p, f := newPool(t, Config{MemoryBudgetMB: 128}, func(n int) sandboxtest.Runtime {
		if n == 0 {
			return withExtension(work)
		}
		return echo
	})
	invoke(t, p, function("a"), `{}`)
	_, err := p.Invoke(context.Background(), function("b"), invocation(`{}`))
	var throttled *errdefs.ThrottleError
	if !errors.As(err, &throttled) || !strings.Contains(err.Error(), "memory budget") {
		t.Fatalf("a call that needs the memory of an environment in use: %v; want the budget's throttle", err)
	}
	if f.Made()[0].Destroyed() {
		t.Fatal("the environment whose extension works was evicted")
	}
	work <- struct{}{}
	testkit.WaitFor(t, 5*time.Second, "the extension's work to end", func() bool {
		_, err := p.Invoke(context.Background(), function("b"), invocation(`{}`))
		return err == nil
	})
	testkit.WaitFor(t, 5*time.Second, "the idle environment evicted", f.Made()[0].Destroyed)
}

func TestCloseDestroysEverything(t *testing.T) {
	p, f := newPool(t, Config{}, always(echo))
	invoke(t, p, function("a"), `{}`)
	invoke(t, p, function("b"), `{}`)
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, sb := range f.Made() {
		if !sb.Destroyed() {
			t.Error("environment survived Close")
		}
	}
	if _, err := p.Invoke(context.Background(), function("a"), &model.Invocation{RequestID: "x"}); err == nil {
		t.Error("invoke after Close succeeded")
	}
}

// A warm runtime that exits right after answering (as Node does after an
// uncaught error) must not take the next call down with it, whether it is
// gone before the next call comes or dies while that call waits for it.
func TestRuntimeDyingBetweenCallsIsReplaced(t *testing.T) {
	for _, c := range []struct {
		name         string
		whileWaiting bool
	}{{"gone before the next call", false}, {"dies while the next call waits", true}} {
		t.Run(c.name, func(t *testing.T) {
			die := make(chan struct{})
			answerThenExit := func(ctx context.Context, sb *sandboxtest.Sandbox) {
				id, _, err := sb.Next(ctx)
				if err != nil || sb.Respond(ctx, id, "response", []byte(`"once"`)) != nil {
					return
				}
				select {
				case <-die:
				case <-ctx.Done():
				}
				sb.End(sandbox.ExitStatus{Code: 128}, false)
			}
			p, f := newPool(t, Config{}, always(answerThenExit))
			fn := function("f")
			if r := invoke(t, p, fn, `{}`); r.FunctionError != "" || string(r.Payload) != `"once"` {
				t.Fatalf("first call: %s %s", r.FunctionError, r.Payload)
			}
			var r model.Result
			if c.whileWaiting {
				call := invokeAsync(p, fn, `{}`)
				testkit.WaitFor(t, 5*time.Second, "the next call to be handed to the warm environment", func() bool { return p.Counts()["busy"] == 1 })
				close(die)
				r = result(t, call)
			} else {
				close(die)
				waitDone(t, f.Made()[0], "the warm runtime to exit")
				r = invoke(t, p, fn, `{}`)
			}
			if r.FunctionError != "" || string(r.Payload) != `"once"` {
				t.Fatalf("second call: %s %s", r.FunctionError, r.Payload)
			}
			if n := len(f.Made()); n != 2 {
				t.Errorf("%d sandboxes; want the second call on a fresh one", n)
			}
		})
	}
}

// A handler error is data, and the environment stays warm.
func TestFunctionError(t *testing.T) {
	failing := func(ctx context.Context, sb *sandboxtest.Sandbox) {
		for ctx.Err() == nil {
			id, _, err := sb.Next(ctx)
			if err != nil || sb.Respond(ctx, id, "error", []byte(`{"errorMessage":"no","errorType":"ValueError"}`)) != nil {
				return
			}
		}
	}
	p, f := newPool(t, Config{}, always(failing))
	for range 2 {
		r := invoke(t, p, function("f"), `{}`)
		if r.FunctionError != model.FunctionErrorUnhandled || string(r.Payload) != `{"errorMessage":"no","errorType":"ValueError"}` {
			t.Errorf("result %s %s", r.FunctionError, r.Payload)
		}
	}
	if n := len(f.Made()); n != 1 {
		t.Errorf("%d sandboxes; a function error must not cost the environment", n)
	}
}

func TestOutOfMemory(t *testing.T) {
	hog := func(ctx context.Context, sb *sandboxtest.Sandbox) {
		sb.Next(ctx)
		sb.End(sandbox.ExitStatus{Signal: syscall.SIGKILL}, true)
	}
	p, f := newPool(t, Config{}, always(hog))
	r := invoke(t, p, function("f"), `{}`)
	if r.FunctionError != model.FunctionErrorUnhandled || !bytes.Contains(r.Payload, []byte(`"errorType":"Runtime.OutOfMemory"`)) || !bytes.Contains(r.Payload, []byte("Runtime exited with error: signal: killed")) {
		t.Errorf("oom result %s", r.Payload)
	}
	if !f.Made()[0].Destroyed() || p.Counts()["idle"] != 0 {
		t.Error("OOM-killed environment kept")
	}
}

// A cold environment whose runtime drops its first /next and dies is not
// retried, whether or not the event reached it: the call fails as the
// runtime's exit.
func TestColdRuntimeDyingBeforeTheEvent(t *testing.T) {
	die := make(chan struct{})
	dropAndDie := func(ctx context.Context, sb *sandboxtest.Sandbox) {
		// The first /next ends init, and its connection drops at once.
		c, err := net.Dial("tcp", sb.Listener().Addr().String())
		if err != nil {
			return
		}
		fmt.Fprintf(c, "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n")
		c.Close()
		select {
		case <-die:
		case <-ctx.Done():
		}
		sb.End(sandbox.ExitStatus{Code: 3}, false)
	}
	p, f := newPool(t, Config{}, always(dropAndDie))
	call := invokeAsync(p, function("f"), `{}`)
	// Dying before the dropped /next ended init would be a failed init
	// (TestSuppressedInit): the runtime dies once init is over.
	testkit.WaitFor(t, 5*time.Second, "the dropped /next to end init", func() bool {
		c := p.Counts()
		return c["idle"]+c["busy"] == 1
	})
	close(die)
	r := result(t, call)
	if n := len(f.Made()); !bytes.Contains(r.Payload, []byte(`"errorType":"Runtime.ExitError"`)) || !bytes.Contains(r.Payload, []byte("exit status 3")) || n != 1 {
		t.Errorf("result %s on %d sandboxes", r.Payload, n)
	}
}

// A sandbox's traffic reaches its function's icebox_network_* counters at
// each call's end and when the environment goes, each byte once.
func TestNetworkTraffic(t *testing.T) {
	p, f := newPool(t, Config{}, always(echo))
	fm := p.metrics.Function("f")
	invoke(t, p, function("f"), `{}`)
	sb := f.Made()[0]
	sb.NetIn.Store(1000)
	sb.NetOut.Store(10)
	invoke(t, p, function("f"), `{}`)
	if in, out := testutil.ToFloat64(fm.NetworkIn()), testutil.ToFloat64(fm.NetworkOut()); in != 1000 || out != 10 {
		t.Errorf("after two calls: in %v out %v, want 1000 and 10", in, out)
	}
	invoke(t, p, function("f"), `{}`)
	sb.NetIn.Store(1500)
	p.FunctionChanged("f", nil) // the environment goes
	testkit.WaitFor(t, 5*time.Second, "the environment to go", func() bool { return len(p.Counts()) == 0 })
	if in, out := testutil.ToFloat64(fm.NetworkIn()), testutil.ToFloat64(fm.NetworkOut()); in != 1500 || out != 10 {
		t.Errorf("after it went: in %v out %v, want 1500 and 10", in, out)
	}
}

// Counts and the gauges report phases: frozen environments are idle.
func TestCountsByPhase(t *testing.T) {
	p, f := newPool(t, Config{}, always(echo))
	invoke(t, p, function("f"), `{}`)
	testkit.WaitFor(t, 5*time.Second, "the freeze", f.Made()[0].Frozen)
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
	f *sandboxtest.Factory // set before the first call

	mu    sync.Mutex
	calls []string
}

func (a *sandboxAPI) ServeEnvironment(l net.Listener) (freezing, thawing func()) {
	var sb *sandboxtest.Sandbox
	for _, s := range a.f.Made() {
		if s.APIListener() == l {
			sb = s
		}
	}
	record := func(name string) func() {
		return func() {
			a.mu.Lock()
			defer a.mu.Unlock()
			a.calls = append(a.calls, fmt.Sprintf("%s (frozen %v)", name, sb.Frozen()))
		}
	}
	return record("freezing"), record("thawing")
}

// The sandbox API hears of every freeze and every thaw right before it: a
// thawed function may call it at once.
func TestFreezeHooks(t *testing.T) {
	api := &sandboxAPI{}
	p, f := newPool(t, Config{SandboxAPI: api}, always(echo))
	api.f = f
	fn := function("f")
	for range 3 {
		invoke(t, p, fn, `{}`)
		testkit.WaitFor(t, 5*time.Second, "the freeze", f.Made()[0].Frozen)
	}
	api.mu.Lock()
	got := strings.Join(api.calls, ", ")
	api.mu.Unlock()
	want := "freezing (frozen false), thawing (frozen true), freezing (frozen false), thawing (frozen true), freezing (frozen false)"
	if got != want {
		t.Errorf("hooks: %s\nwant   %s", got, want)
	}
}

// A sandbox the host cannot build within the init timeout (a burst of cold
// starts on a loaded machine) is a throttled call Lambda's clients retry,
// not an internal error; the pool stays usable, and a caller that gives up
// first gets its own cancellation back.
func TestSandboxBuildTimeoutThrottles(t *testing.T) {
	t.Parallel()
	p, f := newPool(t, Config{InitTimeout: 200 * time.Millisecond}, always(echo))
	var slow atomic.Bool
	slow.Store(true)
	f.Build = func(ctx context.Context, n int) error {
		if !slow.Load() {
			return nil
		}
		<-ctx.Done()
		// What the Linux sandbox returns when init's reply misses the deadline.
		return fmt.Errorf("build sandbox root: sandbox init: read ctl: %w", os.ErrDeadlineExceeded)
	}
	fn := function("f")
	_, err := p.Invoke(context.Background(), fn, invocation(`{}`))
	var te *errdefs.ThrottleError
	if !errors.As(err, &te) || !errors.Is(err, errdefs.ErrThrottled) || te.Reason != errdefs.ReasonConcurrentLimit || te.RetryAfterSeconds < 1 {
		t.Fatalf("slow build: %v (%T); want a ThrottleError (%s)", err, err, errdefs.ReasonConcurrentLimit)
	}
	if !strings.Contains(te.Message, "Rate Exceeded.") {
		t.Errorf("message %q", te.Message)
	}

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	if _, err := p.Invoke(ctx, fn, invocation(`{}`)); err == nil || errors.As(err, &te) {
		t.Errorf("caller gone during the build: %v; want its cancellation, not a throttle", err)
	}

	slow.Store(false)
	if res := invoke(t, p, fn, `{}`); !res.ColdStart {
		t.Error("the call after the slow builds was not a cold start")
	}
}

// The scaling limits are the cluster's: on one of 3 nodes a pool lets a
// function gain a third of the burst at once; alone, all of it.
func TestScalingSharedByNodes(t *testing.T) {
	overlapping := func(p *Pool, calls int) (ok, throttled int) {
		t.Helper()
		var chans []<-chan invoked
		for range calls {
			// Each call takes 200 ms, so they overlap and each needs a new
			// environment.
			chans = append(chans, invokeAsync(p, function("f"), `{"Sleep":200}`))
		}
		for _, ch := range chans {
			var te *errdefs.ThrottleError
			switch r := <-ch; {
			case r.err == nil:
				ok++
			case errors.As(r.err, &te) && te.Reason == errdefs.ReasonFunctionRateLimit:
				throttled++
			default:
				t.Errorf("call: %v", r.err)
			}
		}
		return ok, throttled
	}
	cfg := Config{ScaleBurst: 6, ScaleRate: 0.001}
	alone, _ := newPool(t, cfg, always(echo))
	if ok, throttled := overlapping(alone, 6); ok != 6 || throttled != 0 {
		t.Errorf("alone: %d ran, %d throttled; want the whole burst of 6", ok, throttled)
	}
	shared, _ := newPool(t, cfg, always(echo))
	shared.SetNodes(3)
	if ok, throttled := overlapping(shared, 6); ok != 2 || throttled != 4 {
		t.Errorf("one of 3 nodes: %d ran, %d throttled; want 2 (a third of the burst) and 4", ok, throttled)
	}
}
