package environment

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"syscall"
	"testing"
	"time"

	"icebox/internal/environment/envtest"
	"icebox/internal/model"
	"icebox/internal/sandbox"
)

// extNext runs an extension's event/next in the background.
func extNext(ctx context.Context, e *Env, id string) <-chan *model.ExtensionEvent {
	ch := make(chan *model.ExtensionEvent, 1)
	go func() {
		ev, _ := e.ExtensionNext(ctx, id)
		ch <- ev
	}()
	return ch
}

func register(t *testing.T, e *Env, name string, events ...string) string {
	t.Helper()
	id, _, err := e.Register(name, events)
	if err != nil {
		t.Fatalf("register %s: %v", name, err)
	}
	return id
}

func wantExtensionError(t *testing.T, err error, typ string) {
	t.Helper()
	var xe *model.ExtensionError
	if !errors.As(err, &xe) || xe.Type != typ {
		t.Errorf("err = %v, want %s", err, typ)
	}
}

// Init ends when the runtime and every extension (the external ones
// launched included, registered or not yet) asked for an event, whoever
// comes last.
func TestExtensionsInit(t *testing.T) {
	sb := envtest.New()
	e, out := starting(t, Runtime{Sandbox: sb, Extensions: []string{"ext-a"}})
	e.cfg.Function = model.FunctionInfo{Name: "f", Version: "$LATEST", Handler: "h"}
	internal := register(t, e, "internal-agent", model.EventInvoke)
	next(context.Background(), e)
	inState(t, e, AwaitingExtensions)
	extNext(context.Background(), e, internal)
	time.Sleep(20 * time.Millisecond)
	if e.State() != AwaitingExtensions {
		t.Fatalf("init ended before the launched external extension registered: %s", e.State())
	}
	id, info, err := e.Register("ext-a", []string{model.EventInvoke, model.EventShutdown})
	if err != nil || info.Name != "f" || info.Handler != "h" {
		t.Fatalf("register: %v %+v", err, info)
	}
	extNext(context.Background(), e, id)
	if o := recv(t, out, "init"); o.Kind != Ready {
		t.Fatalf("start: %+v", o)
	}
	if e.State() != Idle {
		t.Errorf("after init: %s", e.State())
	}
	_, _, err = e.Register("late", nil)
	wantExtensionError(t, err, model.ErrorTypeRegistrationClosed)
	if frozen, _, _ := sb.Frozen(); frozen {
		t.Error("frozen at the end of init")
	}
}

// What registration refuses, with Lambda's error types.
func TestExtensionsRegisterRefusals(t *testing.T) {
	e, _ := starting(t, Runtime{Sandbox: envtest.New(), Extensions: []string{"ext"}})
	_, _, err := e.Register("", nil)
	wantExtensionError(t, err, model.ErrorTypeExtensionName)
	_, _, err = e.Register("internal", []string{model.EventShutdown})
	wantExtensionError(t, err, model.ErrorTypeInvalidExtensionEvent)
	_, _, err = e.Register("x", []string{"INVOKE", "RESTORE"})
	wantExtensionError(t, err, model.ErrorTypeInvalidExtensionEvent)
	register(t, e, "ext", model.EventShutdown)
	_, _, err = e.Register("ext", nil)
	wantExtensionError(t, err, model.ErrorTypeInvalidExtensionState)
	for i := 1; i < model.MaxExtensions; i++ {
		register(t, e, string(rune('a'+i)))
	}
	_, _, err = e.Register("eleventh", nil)
	wantExtensionError(t, err, model.ErrorTypeTooManyExtensions)
	_, err = e.ExtensionNext(context.Background(), "no-such-id")
	wantExtensionError(t, err, model.ErrorTypeUnknownExtension)
	if e.ExtensionInitError("no-such-id", "Extension.X", nil) == nil {
		t.Error("an unknown identifier reported an error")
	}
}

// An extension's init error, or its process's end, fails the init.
func TestExtensionsInitFailure(t *testing.T) {
	t.Run("init error", func(t *testing.T) {
		e, out := starting(t, Runtime{Sandbox: envtest.New()})
		id := register(t, e, "agent")
		body := model.ErrorBody("Extension.ConfigMissing", "no API key")
		if err := e.ExtensionInitError(id, "Extension.ConfigMissing", body); err != nil {
			t.Fatal(err)
		}
		o := recv(t, out, "init")
		if o.Kind != FunctionError || o.ErrorType != "Extension.ConfigMissing" || !bytes.Equal(o.Payload, body) {
			t.Errorf("start: %+v", o)
		}
	})
	t.Run("crash", func(t *testing.T) {
		exits := make(chan sandbox.ExtensionExit, 1)
		e, out := starting(t, Runtime{Sandbox: envtest.New(), Extensions: []string{"ext"}, ExtensionExits: exits})
		next(context.Background(), e)
		inState(t, e, AwaitingExtensions)
		exits <- sandbox.ExtensionExit{Name: "ext", Status: sandbox.ExitStatus{Code: 2}}
		wantFailure(t, recv(t, out, "init"), FunctionError, model.ErrorTypeExtensionCrash, "extension ext exited: exit status 2")
		if e.State() != Draining {
			t.Errorf("after the crash: %s", e.State())
		}
	})
}

// extended is a started environment with one extension subscribed to
// INVOKE and SHUTDOWN, both runtime and extension waiting for events
// (polls and evs are what they get).
func extended(t *testing.T) (e *Env, sb *envtest.Sandbox, id string, polls <-chan polled, evs <-chan *model.ExtensionEvent) {
	t.Helper()
	sb = envtest.New()
	e, out := starting(t, Runtime{Sandbox: sb, Extensions: []string{"ext"}})
	id = register(t, e, "ext", model.EventInvoke, model.EventShutdown)
	evs = extNext(context.Background(), e, id)
	polls = next(context.Background(), e)
	if o := recv(t, out, "init"); o.Kind != Ready {
		t.Fatalf("start: %+v", o)
	}
	return e, sb, id, polls, evs
}

// The caller has the answer as soon as the runtime gives it; the
// environment is done with the call (and freezes) only when the extension
// asks for its next event, and the next call waits for that.
func TestExtensionsInvoke(t *testing.T) {
	e, sb, id, _, evs := extended(t)
	res := invoke(t, e, "a", time.Minute)
	ev := recv(t, evs, "INVOKE")
	if ev.Type != model.EventInvoke || ev.Invocation.RequestID != "a" {
		t.Fatalf("event %+v", ev)
	}
	inState(t, e, Busy)
	if !e.Respond("a", []byte(`"ok"`)) {
		t.Fatal("respond refused")
	}
	if o := recv(t, res, "the answer"); o.Kind != Answered {
		t.Fatalf("outcome %+v", o)
	}
	if e.State() != Finishing {
		t.Fatalf("after the answer, the extension still working: %s", e.State())
	}
	settled := e.Settled()
	polls := next(context.Background(), e)
	second := invoke(t, e, "b", time.Minute)
	time.Sleep(20 * time.Millisecond)
	if frozen, _, _ := sb.Frozen(); frozen || closed(settled) || e.State() != Finishing {
		t.Fatalf("before the extension is done: frozen %v, state %s", frozen, e.State())
	}
	evs = extNext(context.Background(), e, id)
	recv(t, settled, "settled")
	if p := recv(t, polls, "the second event"); p.inv.RequestID != "b" {
		t.Fatalf("second event %+v", p)
	}
	if ev := recv(t, evs, "the second INVOKE"); ev.Invocation.RequestID != "b" {
		t.Fatalf("event %+v", ev)
	}
	e.Respond("b", nil)
	recv(t, second, "the second answer")
	extNext(context.Background(), e, id)
	next(context.Background(), e)
	inState(t, e, Frozen)
}

// Extensions share the call's deadline: one still working past it gets the
// environment reset.
func TestExtensionsInvokeDeadline(t *testing.T) {
	e, sb, _, polls, evs := extended(t)
	res := invoke(t, e, "a", 50*time.Millisecond)
	recv(t, evs, "INVOKE")
	recv(t, polls, "the event")
	e.Respond("a", nil)
	recv(t, res, "the answer")
	recv(t, e.Settled(), "the deadline")
	// Settled closes as the deadline drains the environment, and the kill
	// follows under the same lock: State waits for it.
	state := e.State()
	if !closed(sb.Done()) || state != Draining {
		t.Errorf("past the deadline: killed %v, state %s", closed(sb.Done()), state)
	}
}

// SHUTDOWN reaches a subscribed extension, frozen or not, with its reason
// and deadline; Shutdown returns when it asks for the next event.
func TestExtensionsShutdown(t *testing.T) {
	e, sb, id, polls, evs := extended(t)
	res := invoke(t, e, "a", time.Minute)
	recv(t, evs, "INVOKE")
	recv(t, polls, "the event")
	e.Respond("a", nil)
	recv(t, res, "the answer")
	next(context.Background(), e)
	evs = extNext(context.Background(), e, id)
	recv(t, sb.Froze, "the freeze")
	inState(t, e, Frozen)
	if !e.WantsShutdown() {
		t.Fatal("a subscribed extension does not want SHUTDOWN")
	}
	done := make(chan struct{})
	go func() { e.Shutdown(time.Minute); close(done) }()
	inState(t, e, ShuttingDown)
	if frozen, _, _ := sb.Frozen(); frozen {
		t.Error("shutting down frozen")
	}
	// The extension's event/next from before the freeze gets SHUTDOWN;
	// its next one ends the shutdown.
	if ev := recv(t, evs, "SHUTDOWN"); ev.Type != model.EventShutdown || ev.Reason != model.ShutdownSpindown {
		t.Fatalf("event %+v", ev)
	}
	select {
	case <-done:
		t.Fatal("Shutdown returned before the extension was done")
	case <-time.After(20 * time.Millisecond):
	}
	extNext(context.Background(), e, id)
	recv(t, done, "Shutdown")
}

// Shutdown waits no longer than its budget.
func TestExtensionsShutdownBudget(t *testing.T) {
	e, _, _, _, evs := extended(t)
	done := make(chan struct{})
	start := time.Now()
	go func() { e.Shutdown(50 * time.Millisecond); close(done) }()
	ev := recv(t, evs, "SHUTDOWN")
	if ev.Type != model.EventShutdown || ev.Reason != model.ShutdownSpindown || ev.Deadline.Before(start) {
		t.Errorf("event %+v", ev)
	}
	recv(t, done, "Shutdown past its budget")
}

// An environment retired while its extension still works on a call is
// shut down once the extension is done with it.
func TestExtensionsShutdownWhileFinishing(t *testing.T) {
	e, _, id, polls, evs := extended(t)
	res := invoke(t, e, "a", time.Minute)
	recv(t, evs, "INVOKE")
	recv(t, polls, "the event")
	e.Respond("a", nil)
	recv(t, res, "the answer")
	if !e.WantsShutdown() {
		t.Fatal("a finishing environment with a subscriber does not want SHUTDOWN")
	}
	done := make(chan struct{})
	go func() { e.Shutdown(time.Minute); close(done) }()
	time.Sleep(20 * time.Millisecond)
	if e.State() != Finishing {
		t.Fatalf("shut down before the extension was done: %s", e.State())
	}
	if ev := recv(t, extNext(context.Background(), e, id), "SHUTDOWN"); ev.Type != model.EventShutdown {
		t.Fatalf("event %+v", ev)
	}
	extNext(context.Background(), e, id)
	recv(t, done, "Shutdown")
}

// Lambda's Shutdown phase puts the runtime first: SIGTERM, SIGKILL past its
// grace, and only then SHUTDOWN to the extensions, whose deadline is the
// end of the whole budget.
func TestExtensionsShutdownRuntimeFirst(t *testing.T) {
	e, sb, _, _, evs := extended(t)
	start := time.Now()
	done := make(chan struct{})
	go func() { e.Shutdown(time.Minute); close(done) }()
	ev := recv(t, evs, "SHUTDOWN")
	if !closed(sb.Done()) {
		t.Error("SHUTDOWN given while the runtime still runs")
	}
	if got := sb.Signals(); !slices.Equal(got, []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL}) {
		t.Errorf("runtime signals %v, want SIGTERM then SIGKILL", got)
	}
	if ev.Reason != model.ShutdownSpindown || ev.Deadline.Before(start.Add(time.Minute)) || ev.Deadline.After(time.Now().Add(time.Minute)) {
		t.Errorf("event %+v: want spindown, deadline a minute from the start", ev)
	}
}

// A reset environment (its runtime past a deadline, or crashed) is shut
// down with the reset's reason: the runtime alone is killed at the
// deadline, its extensions outlive it, wait in event/next, and get
// SHUTDOWN timeout or failure.
func TestExtensionsShutdownAfterReset(t *testing.T) {
	type env struct {
		e     *Env
		sb    *envtest.Sandbox
		id    string
		polls <-chan polled
		evs   <-chan *model.ExtensionEvent
	}
	for _, tc := range []struct {
		name, reason string
		// reset resets the environment and returns where the extension's
		// next event arrives.
		reset func(t *testing.T, x env) <-chan *model.ExtensionEvent
	}{
		{"call timeout", model.ShutdownTimeout, func(t *testing.T, x env) <-chan *model.ExtensionEvent {
			res := invoke(t, x.e, "a", 50*time.Millisecond)
			recv(t, x.evs, "INVOKE")
			recv(t, x.polls, "the event")
			if out := recv(t, res, "the timeout"); out.Kind != TimedOut {
				t.Fatalf("outcome %+v", out)
			}
			if got := x.sb.Signals(); !slices.Equal(got, []syscall.Signal{syscall.SIGKILL}) {
				t.Errorf("runtime signals %v: want the runtime alone killed", got)
			}
			inState(t, x.e, Draining)
			// Done with its INVOKE, the extension waits for what comes.
			evs := extNext(context.Background(), x.e, x.id)
			until(t, x.e, "the extension waiting", func() bool { return x.e.exts[0].poll != nil })
			return evs
		}},
		{"runtime crash", model.ShutdownFailure, func(t *testing.T, x env) <-chan *model.ExtensionEvent {
			x.sb.End(sandbox.ExitStatus{Code: 2}, false)
			inState(t, x.e, Draining)
			return x.evs
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, sb, id, polls, evs := extended(t)
			evs = tc.reset(t, env{e, sb, id, polls, evs})
			if !e.WantsShutdown() {
				t.Fatal("a reset environment with a subscriber does not want SHUTDOWN")
			}
			done := make(chan struct{})
			go func() { e.Shutdown(time.Minute); close(done) }()
			if ev := recv(t, evs, "SHUTDOWN"); ev.Type != model.EventShutdown || ev.Reason != tc.reason {
				t.Fatalf("event %+v, want reason %s", ev, tc.reason)
			}
			extNext(context.Background(), e, id)
			recv(t, done, "Shutdown")
		})
	}
}

// Lambda's init order: the external extensions start, and the runtime
// starts only once every one of them registered.
func TestExtensionsRegisterBeforeRuntime(t *testing.T) {
	sb := envtest.New()
	e, _ := starting(t, Runtime{Sandbox: sb, Extensions: []string{"ext-a", "ext-b"}})
	until(t, e, "the extensions started", sb.ExtensionsStarted)
	register(t, e, "ext-a", model.EventInvoke)
	time.Sleep(20 * time.Millisecond)
	if sb.Started() {
		t.Fatal("the runtime started before every extension registered")
	}
	register(t, e, "ext-b", model.EventInvoke)
	until(t, e, "the runtime started", sb.Started)
	inState(t, e, Initializing)
}
