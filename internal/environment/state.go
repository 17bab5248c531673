package environment

import "fmt"

// State is where an environment is in its life. The zero value is Creating.
type State uint8

const (
	// Creating: the sandbox is being built; nothing runs yet.
	Creating State = iota
	// Initializing: the runtime runs its init and has not asked for an
	// event yet.
	Initializing
	// Idle: no call; the runtime runs (it answered and has not asked
	// again) or waits in /next unfrozen (its first /next, a failed freeze).
	Idle
	// Frozen: no call; the runtime waited in /next when the sandbox was
	// frozen.
	Frozen
	// HandingOver: a call is given; the runtime takes it at its next /next.
	HandingOver
	// Busy: the runtime holds the call's event.
	Busy
	// Draining: the runtime exited, was killed at a deadline or failed its
	// init, or an extension crashed. The environment takes no more calls;
	// it waits to be destroyed.
	Draining
	// Destroyed: the environment is gone. No way out.
	Destroyed
	// AwaitingExtensions: the runtime finished its init (it waits in
	// /next); registered extensions, or external ones not registered yet,
	// have not asked for their first event. Init ends with the last.
	AwaitingExtensions
	// Finishing: the runtime answered the call (its caller has the
	// answer); extensions given the INVOKE event have not asked for the
	// next one yet. The next call waits; nothing is frozen.
	Finishing
	// ShuttingDown: Lambda's Shutdown phase. The runtime got SIGTERM (and
	// SIGKILL past its grace), then the extensions subscribed to SHUTDOWN
	// got it; the environment waits (within Lambda's budget) for them to
	// finish before it is destroyed.
	ShuttingDown

	numStates = iota
)

var stateNames = [numStates]string{"creating", "initializing", "idle", "frozen", "handing-over", "busy", "draining", "destroyed",
	"awaiting-extensions", "finishing", "shutting-down"}

func (s State) String() string {
	if s < numStates {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Phase is the name counts and metrics report a state under: frozen
// environments are idle ones, an environment handed a call is busy whether
// or not its runtime took the event yet and until its extensions are done
// with it, one waiting for its extensions' init is initializing, and one
// shutting down is draining.
func (s State) Phase() string {
	switch s {
	case Frozen:
		return Idle.String()
	case HandingOver, Finishing:
		return Busy.String()
	case AwaitingExtensions:
		return Initializing.String()
	case ShuttingDown:
		return Draining.String()
	}
	return s.String()
}

// TakesCalls reports whether an environment in this state may be handed a
// call. A Finishing environment takes it once its extensions are done.
func (s State) TakesCalls() bool { return s == Idle || s == Frozen || s == Finishing }

// transition is one move an environment may make, and what makes it.
type transition struct {
	from, to State
	on       string
}

// transitions is every move an environment may make; any other is refused.
// The package doc's diagram is rendered from this table (TestDiagram), and
// a state added for extensions or provisioned environments starts here.
var transitions = []transition{
	{Creating, Initializing, "Start runs the runtime"},
	{Creating, Destroyed, "Destroy (the sandbox could not be made)"},

	{Initializing, Idle, "the runtime's first /next, every extension ready: init is over (no freeze yet)"},
	{Initializing, AwaitingExtensions, "the runtime's first /next while extensions still init"},
	{Initializing, Draining, "init error, runtime exit, extension crash or init timeout"},
	{Initializing, Destroyed, "Destroy"},

	{AwaitingExtensions, Idle, "the last extension's first event/next: init is over (no freeze yet)"},
	{AwaitingExtensions, Draining, "init error, runtime exit, extension crash or init timeout"},
	{AwaitingExtensions, Destroyed, "Destroy"},

	{Idle, Frozen, "/next with no call waiting, or Park after a provisioned init: freeze"},
	{Idle, Busy, "Invoke while the runtime waits in /next"},
	{Idle, HandingOver, "Invoke while the runtime is not in /next"},
	{Idle, Draining, "the runtime exited, or an extension crashed"},
	{Idle, ShuttingDown, "Shutdown: SHUTDOWN to the extensions subscribed"},
	{Idle, Destroyed, "Destroy"},

	{Frozen, Busy, "Invoke: hand the event to the waiting /next, thaw once it is written"},
	{Frozen, HandingOver, "Invoke after the frozen /next was dropped: thaw"},
	{Frozen, Draining, "the runtime was killed, or a thaw failed"},
	{Frozen, ShuttingDown, "Shutdown: thaw, SHUTDOWN to the extensions subscribed"},
	{Frozen, Destroyed, "Destroy"},

	{HandingOver, Busy, "/next takes the event"},
	{HandingOver, Draining, "deadline (kill), the runtime exited first, or an extension crashed"},
	{HandingOver, Destroyed, "Destroy"},

	{Busy, Idle, "/response, /error, or /next without answering"},
	{Busy, Finishing, "the same, while extensions still work on the call"},
	{Busy, HandingOver, "the /next given the event was dropped before it got it"},
	{Busy, Draining, "deadline (kill), the runtime exited, or an extension crashed"},
	{Busy, Destroyed, "Destroy"},

	{Finishing, Idle, "the last extension's event/next (then a waiting runtime freezes)"},
	{Finishing, Draining, "deadline (kill), the runtime exited, or an extension crashed"},
	{Finishing, Destroyed, "Destroy"},

	{ShuttingDown, Destroyed, "Destroy (every extension done, or the budget spent)"},

	{Draining, ShuttingDown, "Shutdown: the runtime gone or killed, SHUTDOWN (timeout, failure) to the extensions subscribed"},
	{Draining, Destroyed, "Destroy"},
}

// allowed is transitions as a lookup table.
var allowed = func() (a [numStates][numStates]bool) {
	for _, t := range transitions {
		a[t.from][t.to] = true
	}
	return a
}()

// move changes the state, if the table allows it, and tells the observer.
// Refusal is a bug in this package: every event checks the state first.
// Preconditions: e.mu held.
func (e *Env) move(to State) error {
	from := e.state
	if from >= numStates || to >= numStates || !allowed[from][to] {
		return fmt.Errorf("environment: illegal transition %s → %s", from, to)
	}
	e.state = to
	switch {
	case to == Finishing:
		e.settled = make(chan struct{})
	case from == Finishing && e.settled != nil:
		if e.finishTimer != nil {
			e.finishTimer.Stop()
		}
		close(e.settled)
	}
	if e.cfg.Observe != nil {
		e.cfg.Observe(from, to)
	}
	return nil
}
