package environment

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	"icebox/internal/model"
	"icebox/internal/sandbox"
)

// Container is the control an environment has over its sandbox.
type Container interface {
	StartExtensions() error
	Start() error
	Freeze() error
	Thaw() error
	Kill() error
	// SignalRuntime signals the runtime process alone (SIGTERM, or SIGKILL
	// with its process group): extensions outlive it for their SHUTDOWN.
	SignalRuntime(sig syscall.Signal) error
}

// Process is what an environment reads about its runtime process.
type Process interface {
	Done() <-chan struct{}
	Exit() sandbox.ExitStatus
	Stats() sandbox.Stats
}

// Sandbox is what an environment drives; sandbox.Sandbox is one.
type Sandbox interface {
	Container
	Process
}

var _ Sandbox = sandbox.Sandbox(nil)

// Config configures one environment.
type Config struct {
	// Observe, when set, is told every state change. It runs under the
	// environment's lock, so it must be quick and must not call back.
	Observe func(from, to State)
	// Function is what registering extensions are told of the function.
	Function model.FunctionInfo
}

// Runtime is what Start runs.
type Runtime struct {
	Sandbox Sandbox
	// Freezing, when set, is called right before every freeze, and Thawing
	// right before every thaw and after a freeze that failed (the sandbox
	// keeps running): the sandbox's own API server cuts what a frozen
	// sandbox would hold. Thawing comes first because a thawed function may
	// call that server at once.
	Freezing, Thawing func()
	// Extensions names the external extensions started with the runtime
	// (the file names under /opt/extensions); init waits for each to
	// register. ExtensionExits, when set, reports their ends.
	Extensions     []string
	ExtensionExits <-chan sandbox.ExtensionExit
}

// ErrRefused means the runtime asked for something its environment's state
// does not allow (an event after it died, before it started).
var ErrRefused = errors.New("not allowed in this state")

// exitWait bounds how long a failure waits for the runtime's exit status
// once it is known to be dying.
const exitWait = 5 * time.Second

// Env is one execution environment's life: its state, the hand-over of
// each event to its runtime, freezing between calls, and the outcome of
// every call. The Runtime API server (package runtimeapi) calls its
// runtime-side methods (Next, Holds, Respond, Fail, InitError); the pool
// calls Start, Invoke and Destroy.
type Env struct {
	cfg      Config
	initDone chan struct{} // closed at the runtime's first /next
	initErr  chan Outcome  // an init's failure reported by the runtime or an extension
	gone     chan struct{} // closed by Destroy
	created  time.Time

	mu    sync.Mutex
	state State
	// calls counts the calls handed to the runtime, for the status page.
	calls int
	rt    Runtime // set by Start
	// call is the call handed over (HandingOver) or held by the runtime
	// (Busy); it stays attached after the runtime dies until its Invoke
	// collects it, so an answer posted just before the exit still counts.
	call *call
	// poll is the token of a runtime waiting in /next: a hand-over sends
	// the call on it. nil when the runtime is not waiting.
	poll chan *call
	// thawLate is set when a call was handed to a frozen runtime's /next:
	// the sandbox is thawed once the event is written (Sent).
	thawLate bool

	// exts are the registered extensions, in order; unregistered names
	// the external ones launched that have not registered yet.
	exts         []*extension
	unregistered map[string]bool
	// settled is closed when the environment leaves Finishing;
	// finishTimer ends Finishing at the call's deadline.
	settled     chan struct{}
	finishTimer *time.Timer
	// registered is closed when every external extension launched has
	// registered (at once without any): the runtime starts then.
	registered chan struct{}
	// shutdownDone is closed when every extension handled SHUTDOWN.
	shutdownDone chan struct{}
	// resetReason is why the environment drains, as a SHUTDOWN names it
	// (timeout or failure); set by the first drain.
	resetReason string
}

// call is one Invoke's event in the environment.
type call struct {
	inv   *model.Invocation
	taken bool         // the runtime has the event; guarded by Env.mu
	done  chan Outcome // receives the runtime's answer; capacity 1
}

// New makes an environment, Creating.
func New(cfg Config) *Env {
	return &Env{cfg: cfg, initDone: make(chan struct{}), initErr: make(chan Outcome, 1), gone: make(chan struct{}), created: time.Now()}
}

// Info is what the status page shows of an environment.
type Info struct {
	State   State
	Created time.Time
	// Calls counts the calls handed to the runtime, the current one
	// included.
	Calls int
}

// Info reports the environment's state, age and calls.
func (e *Env) Info() Info {
	e.mu.Lock()
	defer e.mu.Unlock()
	return Info{State: e.state, Created: e.created, Calls: e.calls}
}

// State reports the environment's current state.
func (e *Env) State() State {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.state
}

// Start runs rt's runtime and waits for the end of its init: Ready, or the
// init's failure as an outcome (the environment is then Draining).
// requestID is the call that pays for the start, named in error bodies.
func (e *Env) Start(rt Runtime, requestID string, initTimeout time.Duration) (Outcome, error) {
	e.mu.Lock()
	if e.state != Creating {
		defer e.mu.Unlock()
		return Outcome{}, fmt.Errorf("environment: start while %s: %w", e.state, ErrRefused)
	}
	e.rt = rt
	e.unregistered = make(map[string]bool, len(rt.Extensions))
	for _, name := range rt.Extensions {
		e.unregistered[name] = true
	}
	e.registered = make(chan struct{})
	e.checkRegistered()
	err := e.move(Initializing)
	e.mu.Unlock()
	if err != nil {
		return Outcome{}, err
	}
	timer := time.NewTimer(initTimeout)
	defer timer.Stop()
	// Lambda's order: the external extensions start and register, then
	// the runtime starts.
	if len(rt.Extensions) > 0 {
		if err := rt.Sandbox.StartExtensions(); err != nil {
			return Outcome{}, err
		}
		if rt.ExtensionExits != nil {
			go e.watchExtensions(rt.ExtensionExits)
		}
		select {
		case <-e.registered:
			select {
			case out := <-e.initErr:
				// The last one crashed instead of registering.
				return out, nil
			default:
			}
		case out := <-e.initErr:
			return out, nil
		case <-e.gone:
			return e.exited(requestID), nil
		case <-timer.C:
			e.drain(model.ShutdownTimeout)
			return failure(TimedOut, requestID, model.ErrorTypeInitError, "init phase did not complete within "+initTimeout.String()), nil
		}
	}
	if err := rt.Sandbox.Start(); err != nil {
		var se *sandbox.StartError
		if !errors.As(err, &se) {
			return Outcome{}, err
		}
		e.drain(model.ShutdownFailure)
		return failure(FunctionError, requestID, model.ErrorTypeInvalidEntrypoint, se.Msg), nil
	}
	go e.watch()
	if len(rt.Extensions) == 0 && rt.ExtensionExits != nil {
		go e.watchExtensions(rt.ExtensionExits)
	}
	select {
	case <-e.initDone:
		return Outcome{Kind: Ready}, nil
	case out := <-e.initErr:
		return out, nil
	case <-rt.Sandbox.Done():
		select {
		case out := <-e.initErr:
			// Runtimes exit right after reporting: the report says more.
			return out, nil
		default:
		}
		return e.exited(requestID), nil
	case <-e.gone:
		return e.exited(requestID), nil
	case <-timer.C:
		e.drain(model.ShutdownTimeout)
		return failure(TimedOut, requestID, model.ErrorTypeInitError, "init phase did not complete within "+initTimeout.String()), nil
	}
}

// watch moves the environment to Draining when its runtime exits.
func (e *Env) watch() {
	<-e.rt.Sandbox.Done()
	e.drain(model.ShutdownFailure)
}

// drain moves a live environment to Draining: it takes no more calls.
// reason is what its extensions' SHUTDOWN will say (timeout or failure).
func (e *Env) drain(reason string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.drainLocked(reason)
}

// drainLocked is drain. Preconditions: e.mu held.
func (e *Env) drainLocked(reason string) {
	if allowed[e.state][Draining] {
		if e.resetReason == "" {
			e.resetReason = reason
		}
		_ = e.move(Draining)
	}
}

// killRuntime ends a runtime past its deadline. Extensions subscribed to
// SHUTDOWN outlive it to be told the reset (Lambda's "timeout"); without
// them the whole sandbox goes at once.
// Preconditions: e.mu held.
func (e *Env) killRuntime() {
	if e.shutdownSubscribers() {
		_ = e.rt.Sandbox.SignalRuntime(syscall.SIGKILL)
		return
	}
	_ = e.rt.Sandbox.Kill()
}

// Invoke hands inv to the runtime and waits for the call's outcome, at most
// timeout (inv.Deadline is set from it). An error means the environment
// could not run the call (a bug, or a thaw that failed); it is then
// Draining, or was never fit to take a call.
func (e *Env) Invoke(inv *model.Invocation, timeout time.Duration) (Outcome, error) {
	inv.Deadline = time.Now().Add(timeout)
	c := &call{inv: inv, done: make(chan Outcome, 1)}
	switch err := e.handOver(c); {
	case errors.Is(err, errNotTaken):
		return e.notTaken(inv.RequestID), nil
	case err != nil:
		return Outcome{}, err
	}
	return e.await(c, timeout), nil
}

// await waits for the outcome of c, handed over: the runtime's answer, or
// else whichever comes first of the runtime's exit, the deadline (the
// runtime is killed) and Destroy.
func (e *Env) await(c *call, timeout time.Duration) Outcome {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	timedOut := false
	select {
	case out := <-c.done:
		return out
	case <-e.rt.Sandbox.Done():
	case <-e.gone:
	case <-timer.C:
		timedOut = true
	}

	e.mu.Lock()
	// A /next that never wrote the event leaves no sandbox frozen.
	e.thawNow()
	select {
	case out := <-c.done:
		// The answer raced with the end: it still counts.
		e.mu.Unlock()
		return out
	default:
	}
	if e.call == c {
		e.call = nil
	}
	taken := c.taken
	reason := model.ShutdownFailure
	if timedOut {
		reason = model.ShutdownTimeout
	}
	e.drainLocked(reason)
	kill := timedOut && !closed(e.rt.Sandbox.Done())
	if kill {
		e.killRuntime()
	}
	e.mu.Unlock()
	id := c.inv.RequestID
	switch {
	case kill:
		return failure(TimedOut, id, model.ErrorTypeTimedOut, model.TimedOutMessage(timeout))
	case !taken && !closed(e.gone):
		return e.notTaken(id)
	}
	return e.exited(id)
}

// errNotTaken means a call was refused because the runtime is gone.
var errNotTaken = errors.New("the runtime is gone")

// handOver gives c to the runtime: to its waiting /next, thawing the
// sandbox first if it is frozen, or else to its next /next.
func (e *Env) handOver(c *call) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for e.state == Finishing {
		// The extensions still work on the last call: the next waits
		// (Finishing ends by the last call's deadline at the latest).
		settled := e.settled
		e.mu.Unlock()
		<-settled
		e.mu.Lock()
	}
	switch e.state {
	case Idle, Frozen:
		if closed(e.rt.Sandbox.Done()) {
			// Died between calls, before its watcher said so.
			return errNotTaken
		}
	case Draining, Destroyed:
		return errNotTaken
	default:
		return fmt.Errorf("environment: invoke while %s: %w", e.state, ErrRefused)
	}
	if e.state == Frozen {
		if e.poll != nil && len(c.inv.Payload) <= lateThawMaxPayload {
			e.thawLate = true
		} else if err := e.thaw(); err != nil {
			e.drainLocked(model.ShutdownFailure)
			return fmt.Errorf("thaw: %w", err)
		}
	}
	e.call = c
	e.calls++
	e.giveInvoke(c.inv)
	if e.poll == nil {
		return e.move(HandingOver)
	}
	c.taken = true
	e.poll <- c
	e.poll = nil
	return e.move(Busy)
}

// lateThawMaxPayload bounds the events written to a frozen runtime's
// /next: the whole response must fit in the connection's buffers, as
// nobody reads it until the thaw.
const lateThawMaxPayload = 16 << 10

func (e *Env) thaw() error {
	if e.rt.Thawing != nil {
		e.rt.Thawing()
	}
	return e.rt.Sandbox.Thaw()
}

// Sent is told that the event /next returned is written to the runtime's
// connection, or failed to be. A call handed to a runtime waiting frozen
// leaves the thaw until then: the runtime's thread waiting on the
// connection, which the freezer wakes out of its wait anyway, finds the
// event there and reads it, rather than sleeping again until it comes (a
// thread switch, about 10-20 µs of the sandbox's CPU, on every warm call).
func (e *Env) Sent() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.thawNow()
}

// thawNow thaws the sandbox if a hand-over left it frozen. A thaw that
// fails leaves the runtime unable to run the call it was handed: the
// sandbox is killed, and the call, never seen, is not taken.
// Preconditions: e.mu held.
func (e *Env) thawNow() {
	if !e.thawLate {
		return
	}
	e.thawLate = false
	if err := e.thaw(); err != nil {
		if c := e.call; c != nil && e.state == Busy {
			c.taken = false
		}
		e.drainLocked(model.ShutdownFailure)
		_ = e.rt.Sandbox.Kill()
	}
}

// notTaken is the outcome of a call whose runtime died before it took the
// event: its body is the exit's, for a caller that does not run it again.
func (e *Env) notTaken(requestID string) Outcome {
	out := e.exited(requestID)
	out.Kind = NotTaken
	return out
}

// exited is the outcome of a call whose runtime died: RuntimeExited, or
// OutOfMemory when the memory limit killed it.
func (e *Env) exited(requestID string) Outcome {
	sb := e.rt.Sandbox
	select {
	case <-sb.Done():
	case <-time.After(exitWait):
	}
	kind, typ := RuntimeExited, model.ErrorTypeExit
	if sb.Stats().OOMKills > 0 {
		kind, typ = OutOfMemory, model.ErrorTypeOutOfMemory
	}
	return failure(kind, requestID, typ, "Runtime exited with error: "+sb.Exit().String())
}

func failure(kind Kind, requestID, typ, msg string) Outcome {
	return Outcome{Kind: kind, ErrorType: typ, Payload: model.RequestErrorBody(requestID, typ, msg)}
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// Destroy ends the environment's life: a call in progress fails, a waiting
// /next returns. It reports false if the environment was already
// destroyed. The caller destroys the sandbox.
func (e *Env) Destroy() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state == Destroyed {
		return false
	}
	_ = e.move(Destroyed)
	e.poll = nil
	close(e.gone)
	return true
}

// Next is the runtime's /next: it returns the next event, waiting until one
// is handed over or ctx ends. The first /next ends init. A runtime waiting
// with no call queued is frozen, except at its first /next: the sandbox's
// own start-up may still be under way then, and a cold start's event
// follows at once anyway.
func (e *Env) Next(ctx context.Context) (*model.Invocation, error) {
	e.mu.Lock()
	switch e.state {
	case Initializing:
		if !e.extensionsReady() {
			if err := e.move(AwaitingExtensions); err != nil {
				e.mu.Unlock()
				return nil, err
			}
			break
		}
		if err := e.move(Idle); err != nil {
			e.mu.Unlock()
			return nil, err
		}
		close(e.initDone)
	case AwaitingExtensions, Finishing:
		// Waiting for the extensions: a repeated /next replaces the
		// waiting one; nothing freezes until they are done.
	case HandingOver:
		c := e.call
		c.taken = true
		err := e.move(Busy)
		e.mu.Unlock()
		return c.inv, err
	case Busy:
		// The runtime moved on without answering: Lambda fails that call.
		e.call.done <- Outcome{Kind: FunctionError, ErrorType: model.ErrorTypeInvalidResponse,
			Payload: model.ErrorBody(model.ErrorTypeInvalidResponse, "runtime asked for the next event before answering the current one")}
		inv := e.call.inv
		e.call = nil
		e.callAnswered(inv)
		if e.state == Idle {
			e.freeze()
		}
	case Idle:
		e.freeze()
	case Frozen:
		// A /next sent before the freeze and read after it: it replaces
		// the waiting one.
	default:
		st := e.state
		e.mu.Unlock()
		return nil, fmt.Errorf("environment: /next while %s: %w", st, ErrRefused)
	}
	token := make(chan *call, 1)
	e.poll = token
	e.mu.Unlock()

	select {
	case c := <-token:
		return c.inv, nil
	case <-e.gone:
		return nil, fmt.Errorf("environment: destroyed: %w", ErrRefused)
	case <-ctx.Done():
		e.dropPoll(token)
		return nil, ctx.Err()
	}
}

// dropPoll forgets a /next whose runtime went away. A call handed to it
// as it went was never seen: the runtime's next /next gets it.
func (e *Env) dropPoll(token chan *call) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.thawNow()
	if e.poll == token {
		e.poll = nil
	}
	select {
	case c := <-token:
		if e.state == Busy && e.call == c {
			c.taken = false
			_ = e.move(HandingOver)
		}
	default:
	}
}

// Park freezes an environment whose runtime, its init over, waits in its
// first /next: one kept initialized ahead of calls (provisioned
// concurrency), which Next leaves running in case a cold start's event
// follows. It reports whether the environment is now frozen.
func (e *Env) Park() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state == Idle && e.poll != nil {
		e.freeze()
	}
	return e.state == Frozen
}

// freeze stops the sandbox of a runtime waiting with nothing to do. It is
// best effort: an environment that cannot be frozen keeps running, Idle.
// Preconditions: e.mu held, e.state Idle.
func (e *Env) freeze() {
	if e.rt.Freezing != nil {
		e.rt.Freezing()
	}
	if err := e.rt.Sandbox.Freeze(); err != nil {
		if e.rt.Thawing != nil {
			e.rt.Thawing()
		}
		return
	}
	_ = e.move(Frozen)
}

// Holds reports whether the runtime holds the event with this request id,
// so that it may answer it.
func (e *Env) Holds(requestID string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.holds(requestID)
}

// holds is Holds. A runtime that died may still have an answer in flight:
// the call stays answerable until its Invoke collects it.
// Preconditions: e.mu held.
func (e *Env) holds(requestID string) bool {
	c := e.call
	return c != nil && c.taken && c.inv.RequestID == requestID && (e.state == Busy || e.state == Draining)
}

// Stream returns where the call with this request id takes a streamed
// response: nil when the runtime does not hold that call, or when its
// caller takes the response buffered.
func (e *Env) Stream(requestID string) model.ResponseStream {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.holds(requestID) {
		return nil
	}
	return e.call.inv.Stream
}

// Respond is the runtime's /response: the call with this request id is
// Answered. It reports false if the runtime does not hold that call.
func (e *Env) Respond(requestID string, payload []byte) bool {
	return e.answer(requestID, Outcome{Kind: Answered, Payload: payload})
}

// Fail is the runtime's /error, or a response the Runtime API could not
// take: the call is a FunctionError with this Lambda error body.
func (e *Env) Fail(requestID, errorType string, body []byte) bool {
	return e.answer(requestID, Outcome{Kind: FunctionError, ErrorType: errorType, Payload: body})
}

func (e *Env) answer(requestID string, out Outcome) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.holds(requestID) {
		return false
	}
	inv := e.call.inv
	e.call.done <- out
	e.call = nil
	if e.state == Busy {
		e.callAnswered(inv)
	}
	return true
}

// InitError is the runtime's /runtime/init/error with Lambda's error body:
// the environment's start fails with it. Outside init it is ignored.
func (e *Env) InitError(body []byte) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.failInit(Outcome{Kind: FunctionError, ErrorType: model.ErrorTypeInitError, Payload: body})
}
