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
	// init. The environment takes no more calls; it waits to be destroyed.
	Draining
	// Destroyed: the environment is gone. No way out.
	Destroyed

	numStates = iota
)

var stateNames = [numStates]string{"creating", "initializing", "idle", "frozen", "handing-over", "busy", "draining", "destroyed"}

func (s State) String() string {
	if s < numStates {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Phase is the name counts and metrics report a state under: frozen
// environments are idle ones, and an environment handed a call is busy
// whether or not its runtime took the event yet.
func (s State) Phase() string {
	switch s {
	case Frozen:
		return Idle.String()
	case HandingOver:
		return Busy.String()
	}
	return s.String()
}

// TakesCalls reports whether an environment in this state may be handed a
// call.
func (s State) TakesCalls() bool { return s == Idle || s == Frozen }

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

	{Initializing, Idle, "the runtime's first /next: init is over (no freeze yet)"},
	{Initializing, Draining, "init error, runtime exit or init timeout"},
	{Initializing, Destroyed, "Destroy"},

	{Idle, Frozen, "/next with no call waiting: freeze"},
	{Idle, Busy, "Invoke while the runtime waits in /next"},
	{Idle, HandingOver, "Invoke while the runtime is not in /next"},
	{Idle, Draining, "the runtime exited"},
	{Idle, Destroyed, "Destroy"},

	{Frozen, Busy, "Invoke: thaw, hand the event to the waiting /next"},
	{Frozen, HandingOver, "Invoke after the frozen /next was dropped: thaw"},
	{Frozen, Draining, "the runtime was killed, or a thaw failed"},
	{Frozen, Destroyed, "Destroy"},

	{HandingOver, Busy, "/next takes the event"},
	{HandingOver, Draining, "deadline (kill), or the runtime exited first"},
	{HandingOver, Destroyed, "Destroy"},

	{Busy, Idle, "/response, /error, or /next without answering"},
	{Busy, HandingOver, "the /next given the event was dropped before it got it"},
	{Busy, Draining, "deadline (kill), or the runtime exited"},
	{Busy, Destroyed, "Destroy"},

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
	if e.cfg.Observe != nil {
		e.cfg.Observe(from, to)
	}
	return nil
}
