package environment

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"icebox/internal/environment/envtest"
	"icebox/internal/model"
	"icebox/internal/sandbox"
	"icebox/internal/testkit"
)

const wait = 5 * time.Second

// polled is what a runtime's /next returned.
type polled struct {
	inv *model.Invocation
	err error
}

// next runs the runtime's /next in the background.
func next(ctx context.Context, e *Env) <-chan polled {
	ch := make(chan polled, 1)
	go func() {
		inv, err := e.Next(ctx)
		if err == nil {
			// As the Runtime API does once the event is written.
			e.Sent()
		}
		ch <- polled{inv, err}
	}()
	return ch
}

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(wait):
		t.Fatalf("timed out waiting for %s", what)
	}
	var zero T
	return zero
}

// until waits for cond, checked under the environment's lock.
func until(t *testing.T, e *Env, what string, cond func() bool) {
	t.Helper()
	met := false
	defer func() {
		if !met {
			t.Logf("state %s", e.State())
		}
	}()
	testkit.WaitFor(t, wait, what, func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		return cond()
	})
	met = true
}

func inState(t *testing.T, e *Env, s State) {
	t.Helper()
	until(t, e, "state "+s.String(), func() bool { return e.state == s })
}

// starting is an environment in Start, waiting for its runtime's init.
func starting(t *testing.T, rt Runtime) (*Env, <-chan Outcome) {
	t.Helper()
	e := New(Config{})
	out := make(chan Outcome, 1)
	go func() {
		o, err := e.Start(rt, "req-init", time.Minute)
		if err != nil {
			t.Error(err)
		}
		out <- o
	}()
	inState(t, e, Initializing)
	t.Cleanup(func() {
		e.Destroy()
		_ = rt.Sandbox.Kill()
	})
	return e, out
}

// ready is a started environment, Idle, its runtime not waiting in /next.
func ready(t *testing.T) (*Env, *envtest.Sandbox) {
	t.Helper()
	sb := envtest.New()
	e, out := starting(t, Runtime{Sandbox: sb})
	ctx, cancel := context.WithCancel(context.Background())
	polls := next(ctx, e)
	if o := recv(t, out, "init"); o.Kind != Ready {
		t.Fatalf("start: %+v", o)
	}
	cancel()
	recv(t, polls, "the first /next to be dropped")
	if frozen, _, _ := sb.Frozen(); frozen || e.State() != Idle {
		t.Fatalf("after the first /next: state %s, frozen %v", e.State(), frozen)
	}
	return e, sb
}

// invoke runs a call in the background.
func invoke(t *testing.T, e *Env, id string, timeout time.Duration) <-chan Outcome {
	ch := make(chan Outcome, 1)
	go func() {
		out, err := e.Invoke(&model.Invocation{RequestID: id, Payload: []byte(`{"n":1}`)}, timeout)
		if err != nil {
			t.Errorf("Invoke: %v", err)
		}
		ch <- out
	}()
	return ch
}

// take has the runtime take the call with this id.
func take(t *testing.T, e *Env, id string) {
	t.Helper()
	p := recv(t, next(context.Background(), e), "an event")
	if p.err != nil || p.inv.RequestID != id {
		t.Fatalf("/next: %+v", p)
	}
}

// holding is a ready environment whose runtime holds the event of call
// "a", and that call's outcome to come.
func holding(t *testing.T) (*Env, *envtest.Sandbox, <-chan Outcome) {
	t.Helper()
	e, sb := ready(t)
	res := invoke(t, e, "a", time.Minute)
	take(t, e, "a")
	return e, sb, res
}

func wantFailure(t *testing.T, out Outcome, kind Kind, typ, msg string) {
	t.Helper()
	if out.Kind != kind || out.ErrorType != typ || !bytes.Contains(out.Payload, []byte(`"errorType":"`+typ+`"`)) || !bytes.Contains(out.Payload, []byte(msg)) {
		t.Errorf("outcome %s %q %s; want %s %q with %q", out.Kind, out.ErrorType, out.Payload, kind, typ, msg)
	}
}

// Every outcome of a call, one test each.
func TestOutcomes(t *testing.T) {
	t.Run("answered", func(t *testing.T) {
		e, _ := ready(t)
		res := invoke(t, e, "a", time.Minute)
		inState(t, e, HandingOver)
		take(t, e, "a")
		if e.Respond("b", []byte("wrong")) || !e.Respond("a", []byte(`"ok"`)) || e.Respond("a", []byte("twice")) {
			t.Error("only the held request id answers, once")
		}
		if out := recv(t, res, "the outcome"); out.Kind != Answered || string(out.Payload) != `"ok"` || !out.Reusable() {
			t.Errorf("outcome %+v", out)
		}
		if e.State() != Idle {
			t.Errorf("after the answer: %s", e.State())
		}
	})
	t.Run("function error", func(t *testing.T) {
		e, _, res := holding(t)
		body := []byte(`{"errorMessage":"boom","errorType":"ValueError"}`)
		if !e.Fail("a", "ValueError", body) {
			t.Fatal("Fail refused")
		}
		if out := recv(t, res, "the outcome"); out.Kind != FunctionError || out.ErrorType != "ValueError" || !bytes.Equal(out.Payload, body) || !out.Reusable() {
			t.Errorf("outcome %+v", out)
		}
	})
	t.Run("function error: next without answering", func(t *testing.T) {
		e, sb, res := holding(t)
		next(context.Background(), e)
		wantFailure(t, recv(t, res, "the outcome"), FunctionError, model.ErrorTypeInvalidResponse, "before answering")
		recv(t, sb.Froze, "the freeze")
		inState(t, e, Frozen)
	})
	t.Run("timed out", func(t *testing.T) {
		e, sb := ready(t)
		res := invoke(t, e, "a", 50*time.Millisecond)
		take(t, e, "a")
		out := recv(t, res, "the outcome")
		wantFailure(t, out, TimedOut, model.ErrorTypeTimedOut, "RequestId: a Error: Task timed out after 0.05 seconds")
		if !closed(sb.Done()) || e.State() != Draining || out.Reusable() {
			t.Errorf("after a timeout: killed %v, state %s", closed(sb.Done()), e.State())
		}
		if e.Respond("a", []byte("late")) {
			t.Error("an answer after the deadline was taken")
		}
	})
	t.Run("timed out before taking the event", func(t *testing.T) {
		e, sb := ready(t)
		out := recv(t, invoke(t, e, "a", 50*time.Millisecond), "the outcome")
		wantFailure(t, out, TimedOut, model.ErrorTypeTimedOut, "Task timed out")
		if !closed(sb.Done()) {
			t.Error("a runtime that never came for its event was not killed")
		}
	})
	t.Run("runtime exited", func(t *testing.T) {
		e, sb, res := holding(t)
		sb.End(sandbox.ExitStatus{Code: 2}, false)
		wantFailure(t, recv(t, res, "the outcome"), RuntimeExited, model.ErrorTypeExit, "RequestId: a Error: Runtime exited with error: exit status 2")
		if e.State() != Draining {
			t.Errorf("state %s", e.State())
		}
	})
	t.Run("out of memory", func(t *testing.T) {
		_, sb, res := holding(t)
		sb.End(sandbox.ExitStatus{Signal: syscall.SIGKILL}, true)
		wantFailure(t, recv(t, res, "the outcome"), OutOfMemory, model.ErrorTypeOutOfMemory, "Runtime exited with error: signal: killed")
	})
	t.Run("not taken: died with the event handed over", func(t *testing.T) {
		e, sb := ready(t)
		res := invoke(t, e, "a", time.Minute)
		inState(t, e, HandingOver)
		sb.End(sandbox.ExitStatus{Code: 128}, false)
		wantFailure(t, recv(t, res, "the outcome"), NotTaken, model.ErrorTypeExit, "exit status 128")
	})
	t.Run("not taken: died between calls", func(t *testing.T) {
		e, sb := ready(t)
		sb.End(sandbox.ExitStatus{Code: 1}, false)
		inState(t, e, Draining)
		start := time.Now()
		wantFailure(t, recv(t, invoke(t, e, "a", time.Minute), "the outcome"), NotTaken, model.ErrorTypeExit, "exit status 1")
		if time.Since(start) > time.Second {
			t.Error("a call on a dead environment waited")
		}
	})
	t.Run("answer just before the exit counts", func(t *testing.T) {
		e, sb, res := holding(t)
		e.mu.Lock()
		_ = e.move(Draining) // as the exit watcher would, before Invoke wakes
		e.mu.Unlock()
		if !e.Respond("a", []byte(`1`)) {
			t.Fatal("the answer of a runtime that just died was refused")
		}
		sb.End(sandbox.ExitStatus{}, false)
		if out := recv(t, res, "the outcome"); out.Kind != Answered {
			t.Errorf("outcome %+v", out)
		}
	})
	t.Run("destroyed during the call", func(t *testing.T) {
		e, sb, res := holding(t)
		e.Destroy()
		sb.Kill()
		if out := recv(t, res, "the outcome"); out.Kind != RuntimeExited {
			t.Errorf("outcome %+v", out)
		}
	})
}

// Every outcome of a start.
func TestStartOutcomes(t *testing.T) {
	t.Run("ready at the first /next", func(t *testing.T) {
		ready(t)
	})
	t.Run("init error", func(t *testing.T) {
		sb := envtest.New()
		e, out := starting(t, Runtime{Sandbox: sb})
		body := []byte(`{"errorMessage":"no module","errorType":"Runtime.ImportModuleError"}`)
		e.InitError(body)
		sb.End(sandbox.ExitStatus{Code: 1}, false)
		if o := recv(t, out, "the start"); o.Kind != FunctionError || !bytes.Equal(o.Payload, body) {
			t.Errorf("start %+v", o)
		}
		if _, err := e.Next(context.Background()); !errors.Is(err, ErrRefused) {
			t.Errorf("/next after an init error: %v", err)
		}
	})
	t.Run("runtime exited", func(t *testing.T) {
		sb := envtest.New()
		_, out := starting(t, Runtime{Sandbox: sb})
		sb.End(sandbox.ExitStatus{Code: 7}, false)
		wantFailure(t, recv(t, out, "the start"), RuntimeExited, model.ErrorTypeExit, "RequestId: req-init Error: Runtime exited with error: exit status 7")
	})
	t.Run("out of memory", func(t *testing.T) {
		sb := envtest.New()
		_, out := starting(t, Runtime{Sandbox: sb})
		sb.End(sandbox.ExitStatus{Signal: syscall.SIGKILL}, true)
		wantFailure(t, recv(t, out, "the start"), OutOfMemory, model.ErrorTypeOutOfMemory, "signal: killed")
	})
	t.Run("init timeout", func(t *testing.T) {
		e := New(Config{})
		o, err := e.Start(Runtime{Sandbox: envtest.New()}, "r", 20*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		wantFailure(t, o, TimedOut, model.ErrorTypeInitError, "RequestId: r Error: init phase did not complete within 20ms")
		if e.State() != Draining {
			t.Errorf("state %s", e.State())
		}
	})
	t.Run("entrypoint cannot run", func(t *testing.T) {
		sb := envtest.New()
		sb.StartErr = &sandbox.StartError{Msg: "permission denied"}
		o, err := New(Config{}).Start(Runtime{Sandbox: sb}, "r", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		wantFailure(t, o, FunctionError, model.ErrorTypeInvalidEntrypoint, "RequestId: r Error: permission denied")
	})
	t.Run("sandbox failure is an error", func(t *testing.T) {
		sb := envtest.New()
		sb.StartErr = errors.New("clone: no memory")
		if _, err := New(Config{}).Start(Runtime{Sandbox: sb}, "r", time.Minute); err == nil {
			t.Error("no error")
		}
	})
	t.Run("twice", func(t *testing.T) {
		e, _ := ready(t)
		if _, err := e.Start(Runtime{Sandbox: envtest.New()}, "r", time.Minute); !errors.Is(err, ErrRefused) {
			t.Errorf("second Start: %v", err)
		}
	})
}

// Freezing: the runtime waiting with nothing to do is frozen, except at
// its first /next; a call thaws it before the event is handed over; the
// hooks run right before each freeze and each thaw (a thawed function may
// call the sandbox's API server at once).
func TestFreezeThaw(t *testing.T) {
	sb := envtest.New()
	var mu sync.Mutex
	var hooks []string
	hook := func(name string) func() {
		return func() {
			mu.Lock()
			defer mu.Unlock()
			frozen, _, _ := sb.Frozen()
			hooks = append(hooks, name+map[bool]string{true: " (frozen)", false: " (running)"}[frozen])
		}
	}
	e, start := starting(t, Runtime{Sandbox: sb, Freezing: hook("freezing"), Thawing: hook("thawing")})
	first := next(context.Background(), e)
	recv(t, start, "init")
	for i := range 3 {
		id := string(rune('a' + i))
		polls := first
		if i > 0 {
			polls = next(context.Background(), e)
			recv(t, sb.Froze, "the freeze")
			inState(t, e, Frozen)
		}
		res := invoke(t, e, id, time.Minute)
		if p := recv(t, polls, "the event"); p.inv == nil || p.inv.RequestID != id {
			t.Fatalf("/next: %+v", p)
		}
		if frozen, _, _ := sb.Frozen(); frozen {
			t.Fatal("event handed to a frozen runtime")
		}
		e.Respond(id, nil)
		recv(t, res, "the outcome")
	}
	mu.Lock()
	got := strings.Join(hooks, ", ")
	mu.Unlock()
	if want := "freezing (running), thawing (frozen), freezing (running), thawing (frozen)"; got != want {
		t.Errorf("hooks: %s\nwant   %s", got, want)
	}
	if _, freezes, thaws := sb.Frozen(); freezes != 2 || thaws != 2 {
		t.Errorf("freezes %d thaws %d over 3 calls", freezes, thaws)
	}

	// A queued call is taken at once: no freeze, no thaw.
	res := invoke(t, e, "q", time.Minute)
	inState(t, e, HandingOver)
	take(t, e, "q")
	e.Respond("q", nil)
	recv(t, res, "the outcome")
	if _, freezes, thaws := sb.Frozen(); freezes != 2 || thaws != 2 {
		t.Errorf("a queued call froze or thawed: freezes %d thaws %d", freezes, thaws)
	}
}

func TestFreezeFailureKeepsRunning(t *testing.T) {
	sb := envtest.New()
	sb.FailFreeze = true
	var thawing int
	e, start := starting(t, Runtime{Sandbox: sb, Thawing: func() { thawing++ }})
	next(context.Background(), e)
	recv(t, start, "init")
	polls := next(context.Background(), e)
	recv(t, sb.Froze, "the freeze attempt")
	e.mu.Lock()
	st, th := e.state, thawing
	e.mu.Unlock()
	if st != Idle || th != 1 {
		t.Fatalf("after a failed freeze: %s, thawing told %d times", st, th)
	}
	res := invoke(t, e, "a", time.Minute)
	recv(t, polls, "the event")
	e.Respond("a", nil)
	recv(t, res, "the outcome")
	if _, _, thaws := sb.Frozen(); thaws != 0 {
		t.Errorf("thawed %d times a sandbox never frozen", thaws)
	}
}

// A frozen runtime whose /next was dropped is thawed by the next call,
// which it takes at its next /next.
func TestThawWithoutWaiter(t *testing.T) {
	e, sb := ready(t)
	ctx, cancel := context.WithCancel(context.Background())
	polls := next(ctx, e)
	recv(t, sb.Froze, "the freeze")
	cancel()
	recv(t, polls, "the dropped /next")
	res := invoke(t, e, "late", time.Minute)
	inState(t, e, HandingOver)
	if frozen, _, _ := sb.Frozen(); frozen {
		t.Fatal("call queued while the sandbox stays frozen")
	}
	take(t, e, "late")
	e.Respond("late", nil)
	recv(t, res, "the outcome")
}

func TestThawFailure(t *testing.T) {
	e, sb := ready(t)
	next(context.Background(), e)
	recv(t, sb.Froze, "the freeze")
	inState(t, e, Frozen)
	sb.FailThaw = true
	// An event too large to wait in the connection's buffers: the
	// sandbox is thawed before it is handed over.
	big := bytes.Repeat([]byte("x"), lateThawMaxPayload+1)
	if _, err := e.Invoke(&model.Invocation{RequestID: "a", Payload: big}, time.Minute); err == nil || e.State() != Draining {
		t.Errorf("invoke on a sandbox that will not thaw: %v, state %s", err, e.State())
	}
}

// A small event handed to a frozen runtime's /next is written before the
// sandbox is thawed: the runtime's waiting thread, woken by the thaw, finds
// it there.
func TestThawAfterEventSent(t *testing.T) {
	e, sb := ready(t)
	polls := make(chan polled, 1)
	go func() {
		inv, err := e.Next(context.Background())
		polls <- polled{inv, err}
	}()
	recv(t, sb.Froze, "the freeze")
	res := invoke(t, e, "a", time.Minute)
	if p := recv(t, polls, "the event"); p.err != nil || p.inv.RequestID != "a" {
		t.Fatalf("/next: %+v", p)
	}
	if frozen, _, _ := sb.Frozen(); !frozen {
		t.Error("thawed before the event was written")
	}
	e.Sent()
	if frozen, _, _ := sb.Frozen(); frozen {
		t.Error("still frozen after the event was written")
	}
	e.Respond("a", []byte(`1`))
	if out := recv(t, res, "the outcome"); out.Kind != Answered {
		t.Errorf("outcome %+v", out)
	}
}

// A thaw that fails after the event was written to the waiting /next
// kills the sandbox: the runtime never saw the call, which is not taken
// (the pool runs it again elsewhere).
func TestThawAfterEventSentFails(t *testing.T) {
	e, sb := ready(t)
	next(context.Background(), e)
	recv(t, sb.Froze, "the freeze")
	sb.FailThaw = true
	if out := recv(t, invoke(t, e, "a", time.Minute), "the outcome"); out.Kind != NotTaken {
		t.Errorf("outcome %+v", out)
	}
	if e.State() != Draining || !closed(sb.Done()) {
		t.Errorf("state %s, sandbox ended %v", e.State(), closed(sb.Done()))
	}
}

// A call handed to a /next as it was dropped goes to the runtime's next
// /next instead of being lost.
func TestDroppedPollKeepsItsCall(t *testing.T) {
	e, _ := ready(t)
	token := make(chan *call, 1)
	e.mu.Lock()
	e.poll = token
	e.mu.Unlock()
	res := invoke(t, e, "a", time.Minute)
	inState(t, e, Busy)
	e.dropPoll(token)
	if e.State() != HandingOver || e.Holds("a") {
		t.Fatalf("after the drop: %s, held %v", e.State(), e.Holds("a"))
	}
	take(t, e, "a")
	e.Respond("a", []byte(`1`))
	if out := recv(t, res, "the outcome"); out.Kind != Answered {
		t.Errorf("outcome %+v", out)
	}
}

func TestDestroy(t *testing.T) {
	e, sb := ready(t)
	polls := next(context.Background(), e)
	inState(t, e, Frozen)
	if !e.Destroy() || e.Destroy() {
		t.Error("Destroy reports true once")
	}
	sb.Kill() // as the pool does next
	if p := recv(t, polls, "the waiting /next"); !errors.Is(p.err, ErrRefused) {
		t.Errorf("/next of a destroyed environment: %+v", p)
	}
	if _, err := e.Next(context.Background()); !errors.Is(err, ErrRefused) {
		t.Errorf("/next after Destroy: %v", err)
	}
	if out := recv(t, invoke(t, e, "a", time.Minute), "the outcome"); out.Kind != NotTaken {
		t.Errorf("invoke after Destroy: %+v", out)
	}
}

// Info counts the calls handed to the runtime, and keeps the creation time.
func TestInfo(t *testing.T) {
	before := time.Now()
	e, _ := ready(t)
	if in := e.Info(); in.State != Idle || in.Calls != 0 || in.Created.Before(before) || in.Created.After(time.Now()) {
		t.Fatalf("a ready environment's info: %+v", in)
	}
	for i, id := range []string{"a", "b"} {
		res := invoke(t, e, id, time.Minute)
		take(t, e, id)
		if in := e.Info(); in.State != Busy || in.Calls != i+1 {
			t.Errorf("holding call %s: %+v, want busy with %d calls", id, in, i+1)
		}
		e.Respond(id, nil)
		recv(t, res, "the outcome")
	}
	if in := e.Info(); in.Calls != 2 {
		t.Errorf("after two calls: %+v", in)
	}
}

// TestPark: an environment kept initialized ahead of calls is frozen in its
// first /next; Park refuses an environment whose runtime is not waiting
// (init running, a call held), and the parked one thaws for its call.
func TestPark(t *testing.T) {
	sb := envtest.New()
	e, out := starting(t, Runtime{Sandbox: sb})
	if e.Park() {
		t.Error("parked while initializing")
	}
	polls := next(context.Background(), e)
	if o := recv(t, out, "init"); o.Kind != Ready {
		t.Fatalf("start: %+v", o)
	}
	if !e.Park() || e.State() != Frozen {
		t.Fatalf("Park after init: state %s", e.State())
	}
	if frozen, _, _ := sb.Frozen(); !frozen {
		t.Error("parked but the sandbox runs")
	}
	res := invoke(t, e, "a", time.Minute)
	if p := recv(t, polls, "the event"); p.err != nil || p.inv.RequestID != "a" {
		t.Fatalf("/next: %+v", p)
	}
	if e.Park() || e.State() != Busy {
		t.Errorf("Park during a call: state %s", e.State())
	}
	e.Respond("a", []byte(`{}`))
	if o := recv(t, res, "the answer"); o.Kind != Answered {
		t.Errorf("call on a parked environment: %+v", o)
	}
}
