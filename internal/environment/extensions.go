package environment

import (
	"context"
	"fmt"
	"slices"
	"syscall"
	"time"

	"icebox/internal/model"
	"icebox/internal/sandbox"
)

// Extensions API (2020-01-01): extensions are parties to an environment's
// life besides its runtime. Init ends when the runtime and every extension
// (registered, or launched from /opt/extensions and not registered yet)
// have asked for their first event; a call ends for the environment when
// the runtime answered and every extension given the INVOKE event asked for
// the next one (Finishing); a shutdown gives SHUTDOWN to the extensions
// subscribed and waits for them within a budget (ShuttingDown).

// refuse is the Extensions API's refusal of a request, of Lambda's type.
func refuse(typ, msg string) error { return &model.ExtensionError{Type: typ, Msg: msg} }

const (
	errUnknownExtensionMsg           = "unknown extension identifier"
	shutdownSubscriptionInternalText = "an internal extension cannot register for SHUTDOWN"
)

// extension is one registered extension. Every field is guarded by Env.mu.
type extension struct {
	id, name         string
	invoke, shutdown bool // the events it registered for
	// ready: it asked for an event since it was last given one (in init:
	// since it registered).
	ready  bool
	exited bool
	// poll is the token of its waiting event/next; nil when not waiting.
	poll chan *model.ExtensionEvent
	// queue holds events given while it was not waiting.
	queue []*model.ExtensionEvent
}

// Register is an extension's event/register: name is its
// Lambda-Extension-Name (the file name of an external one), events what it
// subscribes to. It returns the extension's identifier and what Lambda
// tells it of the function. Registration is open during init only.
func (e *Env) Register(name string, events []string) (string, model.FunctionInfo, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case name == "":
		return "", model.FunctionInfo{}, refuse(model.ErrorTypeExtensionName, "empty extension name")
	case e.state != Initializing && e.state != AwaitingExtensions:
		return "", model.FunctionInfo{}, refuse(model.ErrorTypeRegistrationClosed, "registration is only open during the init phase (environment "+e.state.String()+")")
	case len(e.exts) >= model.MaxExtensions:
		return "", model.FunctionInfo{}, refuse(model.ErrorTypeTooManyExtensions, fmt.Sprintf("at most %d extensions may register", model.MaxExtensions))
	}
	for _, x := range e.exts {
		if x.name == name {
			return "", model.FunctionInfo{}, refuse(model.ErrorTypeInvalidExtensionState, "extension "+name+" is already registered")
		}
	}
	x := &extension{id: model.NewUUID(), name: name}
	external := slices.Contains(e.rt.Extensions, name)
	for _, ev := range events {
		switch {
		case ev == model.EventInvoke:
			x.invoke = true
		case ev == model.EventShutdown && external:
			x.shutdown = true
		case ev == model.EventShutdown:
			return "", model.FunctionInfo{}, refuse(model.ErrorTypeInvalidExtensionEvent, shutdownSubscriptionInternalText)
		default:
			return "", model.FunctionInfo{}, refuse(model.ErrorTypeInvalidExtensionEvent, fmt.Sprintf("event type %q is not one of INVOKE, SHUTDOWN", ev))
		}
	}
	delete(e.unregistered, name)
	e.checkRegistered()
	e.exts = append(e.exts, x)
	return x.id, e.cfg.Function, nil
}

// checkRegistered closes registered once no external extension launched is
// left to register. Preconditions: e.mu held.
func (e *Env) checkRegistered() {
	if len(e.unregistered) == 0 && e.registered != nil && !closed(e.registered) {
		close(e.registered)
	}
}

// ExtensionName is the name of the registered extension with this
// identifier.
func (e *Env) ExtensionName(id string) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	x, err := e.extension(id)
	if err != nil {
		return "", err
	}
	return x.name, nil
}

// extension finds a registered extension by identifier.
// Preconditions: e.mu held.
func (e *Env) extension(id string) (*extension, error) {
	for _, x := range e.exts {
		if x.id == id {
			return x, nil
		}
	}
	return nil, refuse(model.ErrorTypeUnknownExtension, errUnknownExtensionMsg)
}

// ExtensionNext is an extension's event/next: it returns the extension's
// next event, waiting until there is one or ctx ends. Asking is also how
// an extension says it is done with the last one (or with its init).
func (e *Env) ExtensionNext(ctx context.Context, id string) (*model.ExtensionEvent, error) {
	e.mu.Lock()
	x, err := e.extension(id)
	if err != nil {
		e.mu.Unlock()
		return nil, err
	}
	// A draining environment's extensions wait here for their SHUTDOWN.
	if e.state == Destroyed || x.exited {
		e.mu.Unlock()
		return nil, refuse(model.ErrorTypeInvalidExtensionState, "the environment is "+e.state.String())
	}
	if len(x.queue) > 0 {
		ev := x.queue[0]
		x.queue = x.queue[1:]
		e.mu.Unlock()
		return ev, nil
	}
	x.ready = true
	token := make(chan *model.ExtensionEvent, 1)
	x.poll = token
	e.partyReady()
	e.mu.Unlock()

	select {
	case ev := <-token:
		return ev, nil
	case <-e.gone:
		return nil, refuse(model.ErrorTypeInvalidExtensionState, "the environment is destroyed")
	case <-ctx.Done():
		e.mu.Lock()
		if x.poll == token {
			x.poll = nil
		}
		select {
		case ev := <-token:
			// Given as it went: its next event/next gets it.
			x.queue = append([]*model.ExtensionEvent{ev}, x.queue...)
		default:
		}
		e.mu.Unlock()
		return nil, ctx.Err()
	}
}

// give hands ev to x: to its waiting event/next, or else to its next one.
// Preconditions: e.mu held.
func (x *extension) give(ev *model.ExtensionEvent) {
	x.ready = false
	if x.poll != nil {
		x.poll <- ev
		x.poll = nil
		return
	}
	x.queue = append(x.queue, ev)
}

// extensionsReady reports whether every extension is done with what it was
// given, and every external one launched has registered.
// Preconditions: e.mu held.
func (e *Env) extensionsReady() bool {
	if len(e.unregistered) > 0 {
		return false
	}
	for _, x := range e.exts {
		if !x.ready && !x.exited {
			return false
		}
	}
	return true
}

// partyReady moves the environment on when the last party it waited for is
// ready: the end of init, of a call, or of a shutdown.
// Preconditions: e.mu held.
func (e *Env) partyReady() {
	if e.state == ShuttingDown {
		// Only the extensions given SHUTDOWN are waited for.
		for _, x := range e.exts {
			if x.shutdown && !x.exited && !x.ready {
				return
			}
		}
	} else if !e.extensionsReady() {
		return
	}
	switch e.state {
	case AwaitingExtensions:
		if e.move(Idle) == nil {
			close(e.initDone)
		}
	case Finishing:
		if e.move(Idle) == nil && e.poll != nil {
			e.freeze()
		}
	case ShuttingDown:
		if e.shutdownDone != nil {
			close(e.shutdownDone)
			e.shutdownDone = nil
		}
	}
}

// callAnswered moves a Busy environment whose runtime is done with its call
// to Idle, or to Finishing while extensions still work on it; they then
// have until the call's deadline.
// Preconditions: e.mu held, e.state Busy, inv the call.
func (e *Env) callAnswered(inv *model.Invocation) {
	if e.extensionsReady() {
		_ = e.move(Idle)
		return
	}
	if e.move(Finishing) != nil {
		return
	}
	settled := e.settled
	e.finishTimer = time.AfterFunc(time.Until(inv.Deadline), func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.state == Finishing && e.settled == settled {
			// Extensions share the call's timeout: past it the
			// environment is reset, as after a timed-out call.
			e.drainLocked(model.ShutdownTimeout)
			e.killRuntime()
		}
	})
}

// giveInvoke hands the INVOKE event of inv to every extension subscribed.
// Preconditions: e.mu held.
func (e *Env) giveInvoke(inv *model.Invocation) {
	var ev *model.ExtensionEvent
	for _, x := range e.exts {
		if x.invoke && !x.exited {
			if ev == nil {
				ev = &model.ExtensionEvent{Type: model.EventInvoke, Invocation: inv}
			}
			x.give(ev)
		}
	}
}

// Settled is closed once the environment is done with its last call: at
// once unless Finishing, else when its extensions are done (or it drains).
func (e *Env) Settled() <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state == Finishing {
		return e.settled
	}
	return closedChan
}

var closedChan = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()

// ExtensionInitError is an extension's init/error (during init) or
// exit/error: before init ends it fails the init with errorType and body;
// after, the environment drains (Lambda resets it). It is refused for an
// unknown identifier.
func (e *Env) ExtensionInitError(id, errorType string, body []byte) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	x, err := e.extension(id)
	if err != nil {
		return err
	}
	x.exited = true
	if e.failInit(Outcome{Kind: FunctionError, ErrorType: errorType, Payload: body}) {
		return nil
	}
	e.extensionGone()
	return nil
}

// watchExtensions applies the exits of external extensions: one that ends
// during init fails it (Extension.Crash); after init the environment is
// reset, except while shutting down, when exiting is how an extension may
// finish.
func (e *Env) watchExtensions(exits <-chan sandbox.ExtensionExit) {
	for {
		select {
		case <-e.gone:
			return
		case ex := <-exits:
			e.mu.Lock()
			delete(e.unregistered, ex.Name)
			for _, x := range e.exts {
				if x.name == ex.Name {
					x.exited = true
				}
			}
			msg := "extension " + ex.Name + " exited: " + ex.Status.String()
			if !e.failInit(Outcome{Kind: FunctionError, ErrorType: model.ErrorTypeExtensionCrash,
				Payload: model.ErrorBody(model.ErrorTypeExtensionCrash, msg)}) {
				e.extensionGone()
			}
			// After the init's failure is posted: Start, seeing every
			// extension accounted for, looks for it first.
			e.checkRegistered()
			e.mu.Unlock()
		}
	}
}

// extensionGone applies the end of an extension after init.
// Preconditions: e.mu held.
func (e *Env) extensionGone() {
	if e.state == ShuttingDown {
		e.partyReady()
		return
	}
	e.drainLocked(model.ShutdownFailure)
}

// failInit ends a start in progress with out; false after init.
// Preconditions: e.mu held.
func (e *Env) failInit(out Outcome) bool {
	if (e.state == Initializing || e.state == AwaitingExtensions) && e.move(Draining) == nil {
		if e.resetReason == "" {
			e.resetReason = model.ShutdownFailure
		}
		e.initErr <- out
		return true
	}
	return false
}

// ShutdownBudget is how long Lambda gives a shutdown with external
// extensions, the runtime's part included; RuntimeShutdownGrace is the
// runtime's part: from SIGTERM to SIGKILL, before the extensions get
// SHUTDOWN (300 ms, 500 ms when an internal extension registered).
const (
	ShutdownBudget               = 2000 * time.Millisecond
	RuntimeShutdownGrace         = 300 * time.Millisecond
	RuntimeShutdownGraceInternal = 500 * time.Millisecond
)

// WantsShutdown reports whether an extension would receive SHUTDOWN: the
// pool then shuts the environment down off its own path.
func (e *Env) WantsShutdown() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.wantsShutdown()
}

// wantsShutdown is WantsShutdown. Preconditions: e.mu held.
func (e *Env) wantsShutdown() bool {
	switch e.state {
	case Idle, Frozen, Finishing, Draining:
		return e.shutdownSubscribers()
	}
	return false
}

// shutdownSubscribers reports whether a live extension registered for
// SHUTDOWN. Preconditions: e.mu held.
func (e *Env) shutdownSubscribers() bool {
	for _, x := range e.exts {
		if x.shutdown && !x.exited {
			return true
		}
	}
	return false
}

// internalExtensions reports whether an extension registered from within
// the runtime process. Preconditions: e.mu held.
func (e *Env) internalExtensions() bool {
	for _, x := range e.exts {
		if !slices.Contains(e.rt.Extensions, x.name) {
			return true
		}
	}
	return false
}

// Shutdown is Lambda's Shutdown phase, within budget: the runtime, if it
// still runs, gets SIGTERM and its grace (RuntimeShutdownGrace) before
// SIGKILL; then the extensions subscribed get SHUTDOWN with the phase's
// deadline and its reason (spindown for an idle environment retired,
// timeout or failure for a draining one, reset), and Shutdown waits until
// each asked for its next event or exited, or the deadline passed. Only an
// environment with extensions subscribed is shut down this way, one still
// finishing a call once it is done; the caller then destroys the sandbox,
// which kills whatever still runs. It reports whether the phase ran.
func (e *Env) Shutdown(budget time.Duration) bool {
	deadline := time.Now().Add(budget)
	e.mu.Lock()
	for e.state == Finishing {
		settled := e.settled
		e.mu.Unlock()
		<-settled
		e.mu.Lock()
	}
	if !e.wantsShutdown() {
		e.mu.Unlock()
		return false
	}
	reason := model.ShutdownSpindown
	if e.state == Draining {
		reason = e.resetReason
	}
	if e.state == Frozen || e.state == Draining {
		// A draining environment may have been frozen when its runtime
		// was killed.
		if err := e.thaw(); err != nil {
			e.mu.Unlock()
			return false
		}
	}
	if e.move(ShuttingDown) != nil {
		e.mu.Unlock()
		return false
	}
	grace := RuntimeShutdownGrace
	if e.internalExtensions() {
		grace = RuntimeShutdownGraceInternal
	}
	e.mu.Unlock()

	// The runtime first, as Lambda does.
	if rt := e.rt.Sandbox; !closed(rt.Done()) {
		_ = rt.SignalRuntime(syscall.SIGTERM)
		t := time.NewTimer(min(grace, time.Until(deadline)))
		select {
		case <-rt.Done():
		case <-t.C:
			_ = rt.SignalRuntime(syscall.SIGKILL)
		}
		t.Stop()
	}

	e.mu.Lock()
	ev := &model.ExtensionEvent{Type: model.EventShutdown, Reason: reason, Deadline: deadline}
	for _, x := range e.exts {
		if x.shutdown && !x.exited {
			x.give(ev)
		}
	}
	done := make(chan struct{})
	e.shutdownDone = done
	e.partyReady()
	e.mu.Unlock()

	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
	case <-e.gone:
	}
	return true
}
