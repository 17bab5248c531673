// Package environment owns the life of one execution environment: its
// state, the hand-over of each event to its runtime, freezing between
// calls, and the outcome of every call. The Runtime API server (package
// runtimeapi) is a thin HTTP shell over it; the pool drives it with Start,
// Invoke and Destroy.
//
// Every decision is taken under one lock, so an event is never handed to a
// frozen runtime and a runtime is never frozen with a call waiting for it.
// A call returns a typed Outcome (answered, function error, timed out,
// runtime exited, out of memory, not taken); an error means icebox itself
// failed.
//
// In short: creating → initializing → idle ⇄ frozen; a call takes an idle
// or frozen environment to busy (through handing-over while the runtime is
// not yet in /next) and its answer back to idle; a runtime that dies, runs
// past its deadline or fails its init leaves the environment draining until
// it is destroyed. One environment serves one call at a time.
//
// Extensions (extensions.go) are parties besides the runtime: init ends
// when the runtime and every extension asked for an event (waiting for the
// later ones in awaiting-extensions); a call answered while extensions
// still work on its INVOKE event leaves the environment finishing, its
// answer already with the caller, until they ask for the next one; an
// environment destroyed while extensions subscribe to SHUTDOWN is shutting
// down first, within Lambda's 2,000 ms budget: the runtime gets SIGTERM and
// 300 ms, then the extensions get SHUTDOWN with its reason (spindown when
// retired idle, timeout or failure when draining after a reset).
//
// Every move, rendered from the transition table by TestDiagram
// (go test ./internal/environment -run TestDiagram -update rewrites it):
//
//	creating
//	├─► initializing         Start runs the runtime
//	└─► destroyed            Destroy (the sandbox could not be made)
//	initializing
//	├─► idle                 the runtime's first /next, every extension ready: init is over (no freeze yet)
//	├─► awaiting-extensions  the runtime's first /next while extensions still init
//	├─► draining             init error, runtime exit, extension crash or init timeout
//	└─► destroyed            Destroy
//	idle
//	├─► frozen               /next with no call waiting, or Park after a provisioned init: freeze
//	├─► busy                 Invoke while the runtime waits in /next
//	├─► handing-over         Invoke while the runtime is not in /next
//	├─► draining             the runtime exited, or an extension crashed
//	├─► shutting-down        Shutdown: SHUTDOWN to the extensions subscribed
//	└─► destroyed            Destroy
//	frozen
//	├─► busy                 Invoke: hand the event to the waiting /next, thaw once it is written
//	├─► handing-over         Invoke after the frozen /next was dropped: thaw
//	├─► draining             the runtime was killed, or a thaw failed
//	├─► shutting-down        Shutdown: thaw, SHUTDOWN to the extensions subscribed
//	└─► destroyed            Destroy
//	handing-over
//	├─► busy                 /next takes the event
//	├─► draining             deadline (kill), the runtime exited first, or an extension crashed
//	└─► destroyed            Destroy
//	busy
//	├─► idle                 /response, /error, or /next without answering
//	├─► finishing            the same, while extensions still work on the call
//	├─► handing-over         the /next given the event was dropped before it got it
//	├─► draining             deadline (kill), the runtime exited, or an extension crashed
//	└─► destroyed            Destroy
//	draining
//	├─► shutting-down        Shutdown: the runtime gone or killed, SHUTDOWN (timeout, failure) to the extensions subscribed
//	└─► destroyed            Destroy
//	awaiting-extensions
//	├─► idle                 the last extension's first event/next: init is over (no freeze yet)
//	├─► draining             init error, runtime exit, extension crash or init timeout
//	└─► destroyed            Destroy
//	finishing
//	├─► idle                 the last extension's event/next (then a waiting runtime freezes)
//	├─► draining             deadline (kill), the runtime exited, or an extension crashed
//	└─► destroyed            Destroy
//	shutting-down
//	└─► destroyed            Destroy (every extension done, or the budget spent)
//
// Each event is a method that names the states it applies to and refuses
// every other, so a new state (extensions, provisioned environments) takes
// no event it was not written for.
package environment
